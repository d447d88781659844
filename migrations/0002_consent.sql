-- Why: issue 3, consent. Contacts; the append-only consent ledger whose records chain by hash;
-- the suppression list that outlives erasure; visitors tied to contacts (and the tracked-link
-- tables that "Automations" fills); outbound messages with their parts and receipts; inbound
-- texts. Times are integer milliseconds since the epoch (UTC), as in 0001.

create table contacts (
    id integer primary key,
    site_id integer not null references sites(id) on delete cascade,
    phone text not null,                  -- E.164 with the '+'
    first_name text,
    status text not null
        check (status in ('pending', 'active', 'expired', 'opted_out', 'undeliverable')),
    pending_since integer,                -- set while pending: the opt-in expires from here
    created_at integer not null,
    updated_at integer not null,
    unique (site_id, phone)
) strict;

create index contacts_phone on contacts (phone);
create index contacts_pending on contacts (pending_since) where status = 'pending';

-- One row per opt-in, confirmation, opt-out, re-subscription or expiry. `hash` is SHA-256 over
-- the record's fields and `prev_hash` (docs/consent-ledger.md); Python computes it, the
-- triggers below keep the table append-only and the chain unbroken.
create table consents (
    id integer primary key,
    contact_id integer not null references contacts(id) on delete cascade,
    site_id integer not null,
    seq integer not null,                 -- 1, 2, 3 ... per contact
    kind text not null
        check (kind in ('opt_in', 'confirmation', 'opt_out', 'resubscribe', 'expiry')),
    status text not null,                 -- the contact's status after this record
    source text not null
        check (source in ('web_form', 'api', 'csv_import', 'keyword', 'system')),
    source_detail text,                   -- the caller's own label (API and CSV `source`)
    phone text not null,
    at integer not null,                  -- when it happened (an import's consented_at)
    recorded_at integer not null,         -- when we wrote it
    consent_text text,                    -- exactly as shown to the person
    page_url text,
    ip text,
    user_agent text,
    keyword text,                         -- the text received, for keyword records
    inbound_message_id text,
    visitor_id text,
    event_uid text,                       -- the opt-in event, so a retried beacon counts once
    prev_hash text not null,              -- '' for a contact's first record
    hash text not null,
    unique (contact_id, seq)
) strict;

create unique index consents_event on consents (site_id, event_uid) where event_uid is not null;

create trigger consents_no_update before update on consents
begin
    select raise(abort, 'consent records are append-only');
end;

-- Erasure deletes the contact first; only then may its records go (by the cascade).
create trigger consents_no_delete before delete on consents
when exists (select 1 from contacts where id = old.contact_id)
begin
    select raise(abort, 'consent records are append-only; erase the contact instead');
end;

create trigger consents_chain before insert on consents
when new.seq != 1 + (select count(*) from consents where contact_id = new.contact_id)
    or new.prev_hash != ifnull(
        (select hash from consents where contact_id = new.contact_id order by seq desc limit 1),
        '')
begin
    select raise(abort, 'consent record does not continue the contact''s chain');
end;

-- Numbers that must not be texted, as HMAC-SHA256 with the instance's suppression key, so an
-- erased number is still known to have said STOP. site_id null: every site.
create table suppressions (
    id integer primary key,
    phone_hash text not null,
    site_id integer references sites(id) on delete cascade,
    reason text not null check (reason in ('opted_out', 'erased')),
    created_at integer not null
) strict;

create unique index suppressions_once on suppressions (phone_hash, ifnull(site_id, 0));

-- A browser (visitor id) belongs to at most one contact per site; a contact may have many.
create table contact_visitors (
    site_id integer not null references sites(id) on delete cascade,
    visitor_id text not null,
    contact_id integer not null references contacts(id) on delete cascade,
    source text not null check (source in ('optin', 'link', 'api')),
    linked_at integer not null,
    primary key (site_id, visitor_id)
) strict, without rowid;

create index contact_visitors_contact on contact_visitors (contact_id);

-- Later events of a tied browser get their contact as they are inserted, whatever the path.
-- Measured on 100k rows in 500-row group commits: about 5% slower ingest when half the
-- visitors are tied, one index probe per row when none is.
create trigger events_tied_visitor after insert on events
when new.visitor_id is not null and new.contact_id is null and exists (
    select 1 from contact_visitors cv
    where cv.site_id = new.site_id and cv.visitor_id = new.visitor_id)
begin
    update events set contact_id = (
        select contact_id from contact_visitors cv
        where cv.site_id = new.site_id and cv.visitor_id = new.visitor_id)
    where id = new.id;
end;

create table messages (
    id integer primary key,
    site_id integer references sites(id) on delete cascade,
    contact_id integer references contacts(id) on delete cascade,  -- null: not a contact (HELP)
    automation_id integer,                -- null for confirmations and keyword replies
    kind text not null check (kind in ('automation', 'confirmation', 'keyword_reply', 'manual')),
    to_number text not null,              -- E.164
    sender text,                          -- number or id it goes from; null: VONAGE_FROM
    body text not null,
    status text not null check (status in
        ('scheduled', 'sending', 'sent', 'delivered', 'failed', 'skipped', 'cancelled')),
    reason text,
    due_at integer not null,
    sent_at integer,
    delivered_at integer,
    segments integer,
    price text,                           -- decimal in major units, the sum of the parts
    currency text,
    client_ref text not null unique,      -- receipts match on it when the message id is unknown
    provider text,
    attempts integer not null default 0,
    inbound_id integer,                   -- the inbound text a keyword reply answers
    created_at integer not null,
    updated_at integer not null
) strict;

create index messages_contact on messages (contact_id, created_at);
create index messages_due on messages (status, due_at);
create index messages_to on messages (to_number, kind, created_at);
create index messages_kind on messages (kind, created_at);

-- A long text has one Vonage message id per part; each part gets its own receipt.
create table message_parts (
    vonage_id text primary key,
    message_id integer not null references messages(id) on delete cascade,
    status text,                          -- Vonage's latest receipt status for the part
    err_code text,
    price text,
    updated_at integer not null
) strict;

create index message_parts_message on message_parts (message_id);

-- Receipts seen, so a replayed receipt has no second effect.
create table receipts (
    id integer primary key,
    message_id integer not null references messages(id) on delete cascade,
    vonage_id text not null,
    status text not null,
    err_code text not null default '',
    scts text not null default '',
    received_at integer not null,
    unique (vonage_id, status, err_code, scts)
) strict;

create table inbound_messages (
    id integer primary key,
    message_id text not null,             -- Vonage's messageId: one effect per id
    site_id integer references sites(id) on delete cascade,
    contact_id integer references contacts(id) on delete cascade,
    msisdn text not null,                 -- who sent it, E.164
    to_number text not null,              -- our number it was sent to
    body text not null,
    keyword text check (keyword in ('stop', 'start', 'help', 'yes')),  -- null: a reply
    concat_ref text,
    concat_part integer,
    concat_total integer,
    received_at integer not null
) strict;

create index inbound_message_id on inbound_messages (message_id);
create index inbound_contact on inbound_messages (contact_id, received_at);
create index inbound_msisdn on inbound_messages (msisdn);

-- Tracked links in texts (`GET /r/{code}`, built by "Automations"). A click gets a token that
-- the landing page's snippet sends back with its page view (`smsr_c`), which ties that browser
-- to the contact through contact_visitors (source 'link').
create table links (
    code text primary key,
    site_id integer not null references sites(id) on delete cascade,
    contact_id integer not null references contacts(id) on delete cascade,
    message_id integer references messages(id) on delete cascade,
    url text not null,
    created_at integer not null
) strict;

create index links_contact on links (contact_id);

create table link_clicks (
    id integer primary key,
    code text not null references links(code) on delete cascade,
    token text not null unique,
    at integer not null,
    ip text,
    user_agent text,
    visitor_id text,                      -- set when the page view carrying the token arrives
    tied_at integer
) strict;

create index link_clicks_code on link_clicks (code);
