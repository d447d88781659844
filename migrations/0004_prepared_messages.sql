-- Why: texts falling due in a burst must reach the sender within a second. The scheduler now
-- checks and renders an automated text shortly before it is due and keeps the result on the
-- row (still `scheduled`); at the due time only a quick set-based re-check runs. `prepared_at`
-- says when that happened; `prepared_stamp` records what the checks saw (the newest event and
-- suppression ids, the template's and automation's versions), so anything newer (an event, a
-- STOP, a template edit) sends the row back through the full checks.
alter table messages add column prepared_at integer;
alter table messages add column prepared_stamp text;
-- Set when the scheduler has taken a prepared row for a hand-over at its due time, up to two
-- seconds ahead. The row stays `scheduled` until then, so a STOP or a goal still cancels it.
alter table messages add column claimed_at integer;

create index messages_prepared on messages (due_at) where status = 'scheduled' and prepared_at is not null;
