-- The nightly plan follows each restaurant's own clock: one job ticks every minute, and a
-- restaurant's plan runs once per local day, at the first tick at or after its
-- pooling.cutoff in its time zone, across daylight saving changes. A cut-off the clocks skip
-- is read with the offset before the change (02:30 on a spring-forward night runs at 03:30
-- summer time); one that happens twice runs at its second occurrence, after the clocks went
-- back. That is the instant pool_cutoff() gives, so the pool stops waiting when it is planned.
select plan(34);

-- One restaurant per (time zone, cut-off).
create function pg_temp.restaurant(p_name text, p_timezone text, p_cutoff text) returns bigint
language sql as $$
  select (allocator.import_layout(pg_catalog.jsonb_build_object('name', p_name, 'timezone', p_timezone,
    'settings', pg_catalog.jsonb_build_object('pooling', pg_catalog.jsonb_build_object('enabled', true, 'cutoff', p_cutoff)),
    'tables', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('label', 'T1', 'max_capacity', 4))))
    ->> 'restaurant_id')::bigint
$$;

-- What the pg_cron job does, once a minute from p_from to p_to (the clock frozen at each
-- tick): run the plan of every restaurant nightly_due() lists. Returns the ticks at which
-- one of p_names ran, and the day it planned, as 'name day tick' lines in UTC.
create function pg_temp.ticks(p_names text[], p_from timestamptz, p_to timestamptz) returns text[]
language plpgsql as $$
declare
  v_tick timestamptz;
  v_due record;
  v_result jsonb;
  v_ran text[] := '{}';
begin
  for v_tick in select pg_catalog.generate_series(p_from, p_to, interval '1 minute') loop
    perform allocator.freeze_clock(v_tick);
    for v_due in
      select d.restaurant_id, r.name from allocator.nightly_due() d
        join allocator.restaurants r on r.id = d.restaurant_id
       where r.name = any (p_names)
    loop
      v_result := allocator.run_nightly(v_due.restaurant_id);
      if (v_result ->> 'ran')::boolean then
        v_ran := v_ran || pg_catalog.format('%s %s %s', v_due.name, v_result ->> 'day',
          pg_catalog.to_char(v_tick at time zone 'UTC', 'MM-DD HH24:MI'));
      end if;
    end loop;
  end loop;
  return (select pg_catalog.array_agg(x order by x) from pg_catalog.unnest(v_ran) x);
end
$$;

select pg_temp.restaurant('NY 00:30', 'America/New_York', '00:30') as ny0030 \gset
select pg_temp.restaurant('NY 01:30', 'America/New_York', '01:30') as ny0130 \gset
select pg_temp.restaurant('NY 02:30', 'America/New_York', '02:30') as ny0230 \gset
select pg_temp.restaurant('NY 03:30', 'America/New_York', '03:30') as ny0330 \gset
select pg_temp.restaurant('Chatham 00:30', 'Pacific/Chatham', '00:30') as ch0030 \gset
select pg_temp.restaurant('Chatham 03:30', 'Pacific/Chatham', '03:30') as ch0330 \gset

-- The schedule is one job, the same every day: nothing to convert, nothing to reinstall.
select is((select pg_catalog.array_agg(row(c.schedule, c.command)::text) from allocator.cron_plan() c
            where c.jobname = 'allocator-nightly'),
  array['("* * * * *","call allocator.nightly_sweep()")'], 'one nightly job, every minute, calls nightly_sweep');
select is((select pg_catalog.count(*)::int from allocator.cron_plan() c where c.jobname like 'allocator-optimize-%'), 0,
  'no job per restaurant at a UTC time that drifts with daylight saving');

-- New York, autumn: 2026-11-01 02:00 EDT becomes 01:00 EST, so 01:00-01:59 happens twice.
-- The ticks run from midnight before the change to noon the day after. Every plan runs
-- exactly once per day, at the first tick at or after the cut-off: 00:30 is 04:30 UTC before the change and
-- 05:30 UTC after it (the old fixed job ran at 23:30 EST on Nov 1 and planned the wrong day).
select is(pg_temp.ticks(array['NY 00:30', 'NY 01:30', 'NY 02:30', 'NY 03:30'],
                        '2026-11-01 00:00-04', '2026-11-02 12:00-05'),
  array['NY 00:30 2026-11-01 11-01 04:30', 'NY 00:30 2026-11-02 11-02 05:30',
        'NY 01:30 2026-11-01 11-01 06:30', 'NY 01:30 2026-11-02 11-02 06:30',
        'NY 02:30 2026-11-01 11-01 07:30', 'NY 02:30 2026-11-02 11-02 07:30',
        'NY 03:30 2026-11-01 11-01 08:30', 'NY 03:30 2026-11-02 11-02 08:30'],
  'New York, fall back: each day planned once at its cut-off; 01:30, which happens twice, at its second occurrence (01:30 EST)');

select is(allocator.run_nightly(:ny0030) ->> 'reason', 'planned', 'a day already planned is not planned again');
select is((select pg_catalog.array_agg(o.day::text order by o.day) from allocator.optimizer_runs o where o.restaurant_id = :ny0030),
  array['2026-11-01', '2026-11-02'], 'the optimizer ran once for each local day, and for that day');
select is((select row(p.day, p.cutoff_at, p.ran_at, p.status, p.attempts)::text from allocator.nightly_plans p
            where p.restaurant_id = :ny0030 and p.day = '2026-11-02'),
  row('2026-11-02'::date, '2026-11-02 00:30-05'::timestamptz, '2026-11-02 00:30-05'::timestamptz, 'done', 1)::text,
  'nightly_plans records the day, its cut-off, when it ran and the result');
select is((select (p.result ->> 'run_id')::bigint from allocator.nightly_plans p where p.restaurant_id = :ny0030 and p.day = '2026-11-02'),
  (select max(o.id) from allocator.optimizer_runs o where o.restaurant_id = :ny0030),
  'and points at the optimizer run');

-- Before its cut-off a restaurant is not due, and calling it anyway does nothing.
select allocator.freeze_clock('2026-11-03 05:29+00');
select is(allocator.run_nightly(:ny0030) ->> 'reason', 'before_cutoff', 'one minute before the cut-off nothing runs');
select is((select pg_catalog.count(*)::int from allocator.nightly_due() d where d.restaurant_id = :ny0030), 0, 'and it is not due');
select allocator.freeze_clock('2026-11-03 05:30+00');
select is((select row(d.day, d.cutoff_at)::text from allocator.nightly_due() d where d.restaurant_id = :ny0030),
  row('2026-11-03'::date, '2026-11-03 00:30-05'::timestamptz)::text, 'at the cut-off it is due, for its local day');

-- New York, spring: 2027-03-14 02:00 EST becomes 03:00 EDT; 02:30 does not exist that night.
select is(pg_temp.ticks(array['NY 00:30', 'NY 02:30', 'NY 03:30'], '2027-03-14 00:00-05', '2027-03-15 12:00-04'),
  array['NY 00:30 2027-03-14 03-14 05:30', 'NY 00:30 2027-03-15 03-15 04:30',
        'NY 02:30 2027-03-14 03-14 07:30', 'NY 02:30 2027-03-15 03-15 06:30',
        'NY 03:30 2027-03-14 03-14 07:30', 'NY 03:30 2027-03-15 03-15 07:30'],
  'New York, spring forward: 03:30 runs at 03:30 EDT (not 04:30, after the fallback); the missing 02:30 at 03:30 EDT');
select is(allocator.pool_cutoff('America/New_York', (select settings from allocator.restaurants where id = :ny0230),
                                '2027-03-14 19:00-04'),
  '2027-03-14 03:30-04'::timestamptz, 'the missing cut-off is the same instant for the pool: it waits until the plan has run');
select is(allocator.pool_cutoff('America/New_York', (select settings from allocator.restaurants where id = :ny0130),
                                '2026-11-01 19:00-05'),
  '2026-11-01 01:30-05'::timestamptz, 'and so is the cut-off that happens twice');

-- Pacific/Chatham is UTC+12:45, +13:45 in summer; it changes at 02:45 standard time.
-- 2026-09-27: 02:45 becomes 03:45, so 03:30 does not exist.
select is(pg_temp.ticks(array['Chatham 00:30', 'Chatham 03:30'], '2026-09-27 00:00+12:45', '2026-09-28 12:00+13:45'),
  array['Chatham 00:30 2026-09-27 09-26 11:45', 'Chatham 00:30 2026-09-28 09-27 10:45',
        'Chatham 03:30 2026-09-27 09-26 14:45', 'Chatham 03:30 2026-09-28 09-27 13:45'],
  'Chatham, spring forward: planned once a day; the missing 03:30 at 04:30 +13:45');
-- 2027-04-04: 03:45 +13:45 becomes 02:45 +12:45, so 03:30 happens twice.
select is(pg_temp.ticks(array['Chatham 00:30', 'Chatham 03:30'], '2027-04-04 00:00+13:45', '2027-04-05 12:00+12:45'),
  array['Chatham 00:30 2027-04-04 04-03 10:45', 'Chatham 00:30 2027-04-05 04-04 11:45',
        'Chatham 03:30 2027-04-04 04-03 14:45', 'Chatham 03:30 2027-04-05 04-04 14:45'],
  'Chatham, fall back: planned once a day; 03:30, which happens twice, at its second occurrence (+12:45)');
select is((select pg_catalog.array_agg(p.day::text order by p.day) from allocator.nightly_plans p where p.restaurant_id = :ch0330),
  array['2026-09-27', '2026-09-28', '2027-04-04', '2027-04-05'], 'Chatham 03:30: one row per local day planned');

-- The pool is planned before it stops waiting: a pooled booking of a spring-forward day is
-- seated by the plan at the first tick at the cut-off, not by the fallback.
select pg_temp.restaurant('NY pool', 'America/New_York', '03:30') as pool \gset
select allocator.freeze_clock('2027-03-12 12:00-05');
select (allocator.create_booking(:pool, 2, '2027-03-14 19:00-04', 90) ->> 'booking_id')::bigint as pooled \gset
select is(allocator.process_booking(:pooled, 'w') ->> 'outcome', 'deferred', 'a booking of the pooling day waits for the plan');
select is(pg_temp.ticks(array['NY pool'], '2027-03-14 07:00+00', '2027-03-14 08:00+00'),
  array['NY pool 2027-03-14 03-14 07:30'], 'the plan runs at 03:30 EDT');
select is((select state from allocator.bookings where id = :pooled), 'confirmed', 'and seats the pooled booking');
select is((select actor from allocator.booking_state_history where booking_id = :pooled order by version desc limit 1),
  'optimizer', 'the optimizer seated it, not the fallback');

-- A restaurant whose cut-off changes later in the day is not planned twice; one whose
-- cut-off moves earlier than now is planned at the next tick.
select allocator.freeze_clock('2027-03-14 12:00-04');
select is(allocator.update_settings(:ny0030, '{"pooling": {"cutoff": "13:00"}}') -> 'pooling' ->> 'cutoff', '13:00', 'cut-off moved to 13:00');
select is(pg_temp.ticks(array['NY 00:30'], '2027-03-14 12:00-04', '2027-03-14 14:00-04'), null::text[],
  'a day already planned is not planned again after its cut-off moves');
select pg_temp.restaurant('Late', 'America/New_York', '23:00') as late \gset
select allocator.freeze_clock('2027-03-14 13:20-04');
select is(allocator.update_settings(:late, '{"pooling": {"cutoff": "13:10"}}') -> 'pooling' ->> 'cutoff', '13:10', 'a cut-off moved into the past');
select is(pg_temp.ticks(array['Late'], '2027-03-14 13:21-04', '2027-03-14 13:30-04'),
  array['Late 2027-03-14 03-14 17:21'], 'runs at the next tick');

-- Tenancy and arguments.
select throws_ok($$ select allocator.run_nightly(null) $$, 'RA001', 'restaurant id is required', 'a restaurant id is required');
select throws_ok($$ select allocator.run_nightly(-1) $$, 'RA002', 'restaurant -1 does not exist', 'an unknown restaurant is not found');
select ok((select c.relrowsecurity from pg_catalog.pg_class c where c.oid = 'allocator.nightly_plans'::regclass),
  'nightly_plans has row level security');
select ok(has_table_privilege('allocator_readonly', 'allocator.nightly_plans', 'select')
          and not has_table_privilege('allocator_ops', 'allocator.nightly_plans', 'insert'),
  'readable by readonly, written only through run_nightly');

-- A plan that fails is recorded and tried again at the next ticks, three times in all;
-- then the day is left to the fallback and the failure stays in nightly_plans.
select pg_temp.restaurant('Failing', 'America/New_York', '03:30') as failing \gset
create or replace function allocator.replan_day(p_restaurant_id bigint, p_day date) returns jsonb
language plpgsql as $$ begin raise exception 'injected failure' using errcode = 'XX001'; end $$;
select is(pg_temp.ticks(array['Failing'], '2027-03-14 07:29+00', '2027-03-14 07:40+00'), null::text[],
  'a failing plan never counts as run');
select is((select row(p.status, p.attempts, p.result ->> 'sqlstate', p.result ->> 'error')::text
             from allocator.nightly_plans p where p.restaurant_id = :failing),
  row('failed', 3, 'XX001', 'injected failure')::text, 'it was tried at three ticks and the failure recorded');
select is((select pg_catalog.count(*)::int from allocator.nightly_due() d where d.restaurant_id = :failing), 0,
  'then it is no longer due that day');
select is(allocator.run_nightly(:failing) ->> 'reason', 'failed', 'run_nightly reports the day as failed');
select is(pg_temp.ticks(array['Failing'], '2027-03-15 07:29+00', '2027-03-15 07:31+00'), null::text[],
  'the next day is tried again');
select is((select pg_catalog.array_agg(row(p.day, p.attempts)::text order by p.day) from allocator.nightly_plans p where p.restaurant_id = :failing),
  array['(2027-03-14,3)', '(2027-03-15,2)'], 'from its own cut-off on (two ticks so far)');

select * from finish();
