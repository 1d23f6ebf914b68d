-- One clock for every function, so tests can freeze time inside a transaction.

create function allocator.now() returns timestamptz
language sql
stable
parallel safe
as $$
  select coalesce(
    nullif(pg_catalog.current_setting('allocator.clock', true), '')::timestamptz,
    pg_catalog.transaction_timestamp()
  )
$$;
comment on function allocator.now() is
  'The time every allocator function uses: the transaction start, unless allocator.clock is set (SET LOCAL allocator.clock = ''2026-05-01 19:00+02'')';

create function allocator.freeze_clock(p_at timestamptz) returns timestamptz
language sql
volatile
strict
as $$
  select pg_catalog.set_config('allocator.clock', p_at::text, true)::timestamptz
$$;
comment on function allocator.freeze_clock(timestamptz) is
  'Freeze allocator.now() at p_at until the end of the current transaction';

create function allocator.thaw_clock() returns void
language sql
volatile
as $$
  select pg_catalog.set_config('allocator.clock', '', true)
$$;
comment on function allocator.thaw_clock() is
  'Let allocator.now() follow the real transaction time again';
