-- Revision 0004: role timeouts, and the record of each restaurant's nightly plan.

-- Timeouts for the application and operator roles, set in this database only (ALTER ROLE
-- ... IN DATABASE), so that each database of a cluster keeps its own. A lock wait, a
-- statement, or a transaction left idle ends instead of stalling everyone behind it. The
-- values and how to override them: docs/operations.md#timeouts.
do $$
begin
  execute pg_catalog.format('alter role allocator_app in database %I set lock_timeout = %L',
                            pg_catalog.current_database(), '5s');
  execute pg_catalog.format('alter role allocator_app in database %I set statement_timeout = %L',
                            pg_catalog.current_database(), '30s');
  execute pg_catalog.format('alter role allocator_app in database %I set idle_in_transaction_session_timeout = %L',
                            pg_catalog.current_database(), '60s');
  execute pg_catalog.format('alter role allocator_ops in database %I set lock_timeout = %L',
                            pg_catalog.current_database(), '5s');
  execute pg_catalog.format('alter role allocator_ops in database %I set statement_timeout = %L',
                            pg_catalog.current_database(), '15min');
  execute pg_catalog.format('alter role allocator_ops in database %I set idle_in_transaction_session_timeout = %L',
                            pg_catalog.current_database(), '10min');
end
$$;

-- The nightly plan of each restaurant's local day. One row per day: the pg_cron job ticks
-- every minute, and a day with a row is not planned again (run_nightly).
create table allocator.nightly_plans (
  restaurant_id bigint not null references allocator.restaurants (id) on delete cascade,
  day date not null,
  cutoff_at timestamptz not null,
  ran_at timestamptz not null,
  status text not null check (status in ('done', 'failed')),
  attempts integer not null default 1 check (attempts >= 1),
  result jsonb not null,
  primary key (restaurant_id, day)
);

comment on table allocator.nightly_plans is
  'The nightly plan of each restaurant''s local day: the instant of its pooling.cutoff, when the plan ran, and replan_day''s result (done) or the last error (failed, after attempts tries); a day with a row is never planned twice';

alter table allocator.nightly_plans enable row level security;
