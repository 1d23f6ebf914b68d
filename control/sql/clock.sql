-- One clock for every function, so tests can freeze time inside a transaction.

-- Only a superuser session may move the clock: SECURITY DEFINER functions obey it, so an
-- application role must not be able to book in the past or revive an expired hold.
create or replace function allocator.clock_override(p_setting text) returns timestamptz
language plpgsql
stable
as $$
begin
  if not coalesce((select r.rolsuper from pg_catalog.pg_roles r where r.rolname = session_user), false) then
    raise exception using errcode = 'RA009', message = 'only a superuser session may set allocator.clock',
      hint = 'RESET allocator.clock';
  end if;
  return p_setting::timestamptz;
end
$$;

comment on function allocator.clock_override(text) is
  'The frozen time from allocator.clock; raises not_permitted (RA009) unless the session user is a superuser';

create or replace function allocator.now() returns timestamptz
language sql
stable
parallel safe
as $$
  select case
    when coalesce(pg_catalog.current_setting('allocator.clock', true), '') = '' then pg_catalog.transaction_timestamp()
    else allocator.clock_override(pg_catalog.current_setting('allocator.clock', true))
  end
$$;

comment on function allocator.now() is
  'The time every allocator function uses: the transaction start, unless a superuser session set allocator.clock (SET LOCAL allocator.clock = ''2026-05-01 19:00+02'')';

create or replace function allocator.freeze_clock(p_at timestamptz) returns timestamptz
language sql
volatile
strict
as $$
  select pg_catalog.set_config('allocator.clock', p_at::text, true)::timestamptz
$$;

comment on function allocator.freeze_clock(timestamptz) is
  'Freeze allocator.now() at p_at until the end of the current transaction';

create or replace function allocator.thaw_clock() returns void
language sql
volatile
as $$
  select pg_catalog.set_config('allocator.clock', '', true)
$$;

comment on function allocator.thaw_clock() is
  'Let allocator.now() follow the real transaction time again';


