-- Why: the first schema. Instance keys, sites (what the script tag names), and the events the
-- snippet and the collector record. Times are integer milliseconds since the epoch (UTC), so
-- the scheduler can compare them cheaply; the API shows them as RFC 3339.

create table instance_keys (
    name text primary key,           -- 'secret_key', 'suppression_key', ...
    value text not null,
    created_at text not null
) strict;

create table sites (
    id integer primary key,
    key text not null unique,        -- public, in the script tag
    secret text not null unique,     -- for server-side events
    name text not null,
    origins text not null,           -- JSON list of "scheme://host[:port]"
    country text not null default 'US',
    timezone text not null,
    allowed_countries text not null, -- JSON list of ISO 3166 alpha-2
    sender text,                     -- null: VONAGE_FROM
    attribution_click_seconds integer not null default 432000,
    attribution_delivery_seconds integer not null default 43200,
    send_window_start text not null default '09:00',
    send_window_end text not null default '20:00',
    daily_cap integer not null default 1,
    double_opt_in integer not null default 1,
    help_text text,                  -- null: a default naming the site
    pricing_paths text not null default '[]',
    created_at text not null
) strict;

create table events (
    id integer primary key,
    site_id integer not null references sites(id) on delete cascade,
    uid text not null,               -- the event id the snippet made; duplicates are dropped
    name text not null,
    visitor_id text,
    session_id text,
    contact_id integer,              -- set once the visitor is tied to a contact
    url text,
    path text,
    title text,
    props text not null default '{}',
    at integer not null,             -- when it happened (client clock, checked on ingest)
    received_at integer not null,
    unique (site_id, uid)
) strict;

create index events_site_at on events (site_id, at);
create index events_visitor on events (site_id, visitor_id, at);
create index events_contact on events (contact_id, at) where contact_id is not null;
