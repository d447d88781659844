-- Why: issue 4, automations. Message templates, automations (trigger, delay, goals, freshness),
-- the link from an automated message to the trigger occurrence it answers (one row per
-- occurrence, never two), the log of every decision the scheduler takes, and attribution of
-- purchases to the texts that brought them.

create table templates (
    id integer primary key,
    site_id integer not null references sites(id) on delete cascade,
    name text not null,
    body text not null,
    created_at integer not null,
    updated_at integer not null
) strict;

create index templates_site on templates (site_id);

create table automations (
    id integer primary key,
    site_id integer not null references sites(id) on delete cascade,
    name text not null,
    trigger text not null,                -- cart_abandoned, form_abandoned, pricing_viewed or an event name
    path_pattern text,                    -- shell-style glob on the trigger event's path
    min_cart_value real,
    delay_seconds integer not null default 900,
    goals text,                           -- JSON list; null: the trigger's default goals
    template_id integer not null references templates(id),
    active integer not null default 1,
    max_age_seconds integer not null default 172800,
    created_at integer not null,
    updated_at integer not null
) strict;

create index automations_site on automations (site_id, active);

-- The trigger occurrence an automated message answers. `occurrence` names it (e.g. the first
-- cart_update of a cart that was not emptied since), so planning the same history twice finds
-- the existing row instead of making a second text.
create table automation_runs (
    message_id integer primary key references messages(id) on delete cascade,
    automation_id integer not null references automations(id) on delete cascade,
    contact_id integer not null references contacts(id) on delete cascade,
    occurrence text not null,
    trigger_event_id integer,             -- the latest event of the occurrence (events.id)
    trigger_at integer not null,          -- when that event happened; due = trigger_at + delay
    unique (automation_id, contact_id, occurrence)
) strict;

create index automation_runs_contact on automation_runs (contact_id);

-- Why a message was sent, skipped, cancelled or deferred: one row per decision.
create table message_log (
    id integer primary key,
    message_id integer not null references messages(id) on delete cascade,
    at integer not null,
    decision text not null
        check (decision in ('scheduled', 'rescheduled', 'deferred', 'waiting', 'sending', 'sent',
                            'failed', 'skipped', 'cancelled', 'delivered', 'retry')),
    reason text,
    detail text
) strict;

create index message_log_message on message_log (message_id, at);

-- Purchases credited to a text (a click within the site's click window, or a delivery within its
-- delivery window), with their revenue; one purchase event is credited at most once.
create table attributions (
    event_id integer primary key references events(id) on delete cascade,
    message_id integer not null references messages(id) on delete cascade,
    via text not null check (via in ('click', 'delivery')),
    value real not null default 0,
    currency text,
    at integer not null
) strict;

create index attributions_message on attributions (message_id);

-- Where the planner has read the events table up to (events.id), and other cursors.
create table cursors (
    name text primary key,
    value integer not null
) strict;
