-- The assignment engine with a frozen clock: scoring, capacity edges, the coordinator path,
-- retries with backoff, breaker, shadow mode and the kill switch.
select plan(49);

select allocator.freeze_clock('2026-06-01 12:00+00');
-- E1, E2: 2-tops; E3: a 4-top (min 2); E4+E5 adjacent 4-tops; Z1 in zone Window.
select (allocator.import_layout('{"name": "Engine", "settings": {"buffer_minutes": 0,
    "retry": {"max_attempts": 3, "base_delay_ms": 1000, "max_delay_ms": 3000, "jitter": 0.2}},
  "zones": [{"name": "Hall"}, {"name": "Window"}],
  "tables": [{"label": "E1", "zone": "Hall", "max_capacity": 2}, {"label": "E2", "zone": "Hall", "max_capacity": 2},
             {"label": "E3", "zone": "Hall", "min_capacity": 2, "max_capacity": 4},
             {"label": "E4", "zone": "Hall", "min_capacity": 2, "max_capacity": 4},
             {"label": "E5", "zone": "Hall", "min_capacity": 2, "max_capacity": 4},
             {"label": "Z1", "zone": "Window", "max_capacity": 2}],
  "adjacency": [["E4", "E5"]]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id = (select id from allocator.restaurants where name = 'Engine') $$;
create function pg_temp.book(p_party int, p_at text, p_zone text default null) returns bigint language sql as
  $$ select (allocator.create_booking((select id from allocator.restaurants where name = 'Engine'), p_party,
       p_at::timestamptz, 120, p_preferred_zone => p_zone) ->> 'booking_id')::bigint $$;

-- availability
select is((select count(*)::int from allocator.availability(:r, '[2026-06-01 19:00+00, 2026-06-01 21:00+00)')),
  7, 'everything is free: six tables and one combination');

-- scoring and determinism
select pg_temp.book(2, '2026-06-01 19:00+00') as b2 \gset
select is((select table_ids from allocator.plan_booking(:b2) where rank = 1), array[pg_temp.t('E1')],
  'a party of 2 goes to the first 2-top (best fit, lowest id on ties)');
select results_eq(format('select table_ids, score from allocator.plan_booking(%s)', :b2),
  format('select table_ids, score from allocator.plan_booking(%s)', :b2), 'planning twice gives the same ranking');
select ok((select bool_and(score <= 1 and score >= 0) from allocator.plan_booking(:b2, 100)), 'scores are within [0, 1]');
select is((select count(*)::int from allocator.plan_booking(:b2, 100) where table_ids = array[pg_temp.t('E3')]), 1,
  'a party equal to a table''s minimum can sit there');
select pg_temp.book(2, '2026-06-01 19:00+00', 'Window') as bz \gset
select is((select table_ids from allocator.plan_booking(:bz) where rank = 1), array[pg_temp.t('Z1')],
  'the booking''s zone preference wins between equal fits');
select pg_temp.book(4, '2026-06-01 19:00+00') as b4 \gset
select is((select table_ids from allocator.plan_booking(:b4) where rank = 1), array[pg_temp.t('E3')],
  'a party equal to a table''s maximum sits there, not on a combination');
select pg_temp.book(7, '2026-06-01 19:00+00') as b7 \gset
select is((select table_ids from allocator.plan_booking(:b7) where rank = 1),
  allocator.sorted_ids(array[pg_temp.t('E4'), pg_temp.t('E5')]), 'a party of 7 needs the combination');
select is((select strategy from allocator.plan_booking(:b7) where rank = 1), 'optimal_fit', 'and names the strategy that carried it');
select throws_ok(format('select * from allocator.plan_booking(%s, 0)', :b7), 'RA001', NULL, 'plan limit 0 is refused');

-- the coordinator path
select is(allocator.process_booking(:b7, 'w1') ->> 'outcome', 'confirmed', 'process_booking confirms the party of 7');
select results_eq(format('select to_state from allocator.booking_history(%s) order by version', :b7),
  $$ values ('created'), ('capacity_verified'), ('assignment_pending'), ('assignment_in_progress'), ('assigned'), ('confirmed') $$,
  'it walks created -> capacity_verified -> assignment_pending -> assignment_in_progress -> assigned -> confirmed');
select is((select count(*)::int from allocator.allocations where booking_id = :b7 and kind = 'confirmed'), 2,
  'both tables are allocated');
select is((select result from allocator.booking_attempts(:b7)), 'confirmed', 'the attempt is recorded');
select ok(not exists (select 1 from allocator.assignment_queue where booking_id = :b7), 'and the booking leaves the queue');
select is(allocator.process_booking(:b7, 'w2') ->> 'reason', 'state_confirmed', 'processing again is a noop with a reason');
select is((select payload - 'booking_id' from allocator.events where booking_id = :b7 and topic = 'booking.assignment_succeeded'),
  jsonb_build_object('partySize', 7, 'timeslot', jsonb_build_object('start', '2026-06-01 19:00+00'::timestamptz, 'end', '2026-06-01 21:00+00'::timestamptz),
                     'attempt', 1, 'strategy', 'optimal_fit', 'reason', null),
  'one booking.assignment_succeeded event with party size, timeslot, attempt and strategy');

select pg_temp.book(9, '2026-06-01 19:00+00') as b9 \gset
select is(allocator.process_booking(:b9, 'w1') ->> 'outcome', 'manual_review', 'a party no table or combination seats');
select is((select manual_review_reason from allocator.bookings where id = :b9), 'no table or combination seats a party of 9',
  'goes to manual review at once, with the reason');
select is((select count(*)::int from allocator.booking_attempts(:b9)), 1, 'after a single attempt');
select is((select payload ->> 'reason' from allocator.events where booking_id = :b9 and topic = 'booking.assignment_failed'),
  'no_table_fits_party', 'booking.assignment_failed says why');

-- retries and backoff when everything that fits is taken
select pg_temp.book(7, '2026-06-01 20:00+00') as late \gset
select allocator.process_booking(:late, 'w1') as r1 \gset
select is(:'r1'::jsonb ->> 'outcome', 'retry', 'a party that fits the layout but not the free tables is retried');
select is((:'r1'::jsonb ->> 'delay_ms')::int, allocator.backoff_ms((select settings from allocator.restaurants where id = :r), :late, 1),
  'after the backoff for attempt 1');
select ok((:'r1'::jsonb ->> 'delay_ms')::int between 800 and 1200, 'which is the base delay within the jitter');
select is(allocator.process_booking(:late, 'w1') ->> 'reason', 'not_due', 'it is not processed again before it is due');
select ok(allocator.backoff_ms((select settings from allocator.restaurants where id = :r), :late, 2) between 1600 and 2400
      and allocator.backoff_ms((select settings from allocator.restaurants where id = :r), :late, 5) between 2400 and 3600,
  'the delay doubles and is capped at max_delay_ms');
select allocator.freeze_clock('2026-06-01 12:00:10+00');
select is(allocator.process_booking(:late, 'w1') ->> 'attempt', '2', 'the second attempt runs when due');
select allocator.freeze_clock('2026-06-01 12:00:20+00');
select is(allocator.process_booking(:late, 'w1') ->> 'outcome', 'manual_review', 'the last attempt sends it to manual review');
select is((select count(distinct attempt)::int from allocator.booking_attempts(:late)), 3, 'after max_attempts attempts');
select results_eq(format($$select (payload ->> 'attempt')::int, payload ->> 'reason' from allocator.events
                          where booking_id = %s and topic = 'booking.assignment_failed' order by id$$, :late),
  $$ values (1, 'no_free_table'), (2, 'no_free_table'), (3, 'no_free_table') $$,
  'one booking.assignment_failed per attempt, numbered, with its reason');

-- circuit breaker
select is(allocator.breaker_record(:r, false), 'closed', 'one failure keeps the breaker closed');
select allocator.breaker_record(:r, false), allocator.breaker_record(:r, false), allocator.breaker_record(:r, false);
select is(allocator.breaker_record(:r, false), 'open', 'failure_threshold failures open it');
select is(allocator.breaker_allow(:r), 'open', 'an open breaker refuses calls');
select pg_temp.book(2, '2026-06-01 14:00+00') as bo \gset
select is(allocator.process_booking(:bo, 'w1') ->> 'reason', 'circuit_open', 'a booking meets the open breaker');
select is((select payload ->> 'reason' from allocator.events where booking_id = :bo and topic = 'booking.assignment_aborted'),
  'circuit_open', 'booking.assignment_aborted: not tried, and why');
select allocator.freeze_clock('2026-06-01 12:01:00+00');
select is(allocator.breaker_allow(:r), 'half_open', 'after the cooldown it is half-open');
select is(allocator.breaker_record(:r, true), 'closed', 'a success in half-open closes it');

-- shadow mode and kill switch
select allocator.update_settings(:r, '{"flags": {"shadow": true}}') is not null as x \gset
select pg_temp.book(2, '2026-06-01 13:00+00') as bs \gset
select is(allocator.process_booking(:bs, 'w1') ->> 'strategy', 'legacy_first_fit', 'in shadow mode the legacy planner decides');
select ok((select metadata ? 'legacy_table_ids' and metadata ? 'engine_plans' from allocator.booking_assignment_attempts
            where booking_id = :bs and result = 'shadow')
      and (select array_agg(table_id) from allocator.allocations where booking_id = :bs)
          = (select array_agg(x::bigint) from allocator.booking_assignment_attempts a, jsonb_array_elements_text(a.metadata -> 'legacy_table_ids') x
              where a.booking_id = :bs and a.result = 'shadow'),
  'the engine''s decision is recorded beside the legacy one, and only the legacy one is allocated');

select pg_temp.book(2, '2026-06-01 13:00+00', 'Window') as bw \gset
select is(allocator.process_booking(:bw, 'w1') -> 'tables', to_jsonb(array[pg_temp.t('E2')]),
  'the legacy planner gives the window guest the next 2-top, where the engine would pick the window');
select is((select row(decisions, agreements, agreement_rate, engine_seated, legacy_seated, engine_covers, legacy_covers, errors)::text
             from allocator.shadow_report_between('2026-06-01', '2026-06-02') where restaurant_id = :r),
  '(2,1,0.5000,2,2,4,4,0)', 'the shadow report: two decisions, one agreed, both planners seat both parties');
select is((select count(*)::int from allocator.shadow_report_between('2026-06-02', '2026-06-03')), 0,
  'and nothing outside its window');

-- Rollout: a restaurant is in the first p percent by a hash of its id, the same every time.
select ok(not exists (select 1 from generate_series(1, 2000) i where allocator.in_rollout(i, 0))
      and not exists (select 1 from generate_series(1, 2000) i where not allocator.in_rollout(i, 100)),
  'nobody at 0 percent, everybody at 100');
select ok(not exists (select 1 from generate_series(1, 300) i, generate_series(0, 99) p
                       where allocator.in_rollout(i, p) and not allocator.in_rollout(i, p + 1)),
  'a restaurant in the rollout stays in it as the percentage grows');
select ok((select count(*) filter (where allocator.in_rollout(i, 30))::numeric / count(*)
             from generate_series(1, 2000) i) between 0.25 and 0.35,
  'about 30 percent of restaurants are in a 30 percent rollout');
select abs(hashtext('rollout:' || :r)) % 100 as edge \gset
select allocator.update_settings(:r, format('{"flags": {"shadow": false, "rollout_percent": %s}}', :edge)::jsonb) is not null as x \gset
select pg_temp.book(4, '2026-06-01 15:00+00') as out_of_rollout \gset
select is(allocator.process_booking(:out_of_rollout, 'w1') ->> 'strategy', 'legacy_first_fit',
  'a restaurant just outside the rollout is planned by the legacy planner');
select allocator.update_settings(:r, format('{"flags": {"rollout_percent": %s}}', :edge + 1)::jsonb) is not null as x \gset
select pg_temp.book(4, '2026-06-01 15:00+00') as in_rollout \gset
select isnt(allocator.process_booking(:in_rollout, 'w1') ->> 'strategy', 'legacy_first_fit',
  'one percent more and the engine plans it');

select allocator.update_settings(:r, '{"flags": {"shadow": false, "kill_switch": true}}') is not null as x \gset
select pg_temp.book(2, '2026-06-01 16:00+00', 'Window') as bk \gset
select allocator.process_booking(:bk, 'w1') as rk \gset
select is(:'rk'::jsonb ->> 'strategy', 'legacy_first_fit', 'the kill switch routes to the legacy planner');
select is(:'rk'::jsonb -> 'tables', pg_catalog.to_jsonb(array[pg_temp.t('E1')]),
  'which takes the smallest free table with the lowest id, ignoring the zone preference');

select * from finish();
