-- Created -> confirmed latency has one definition (allocator.confirmation_latency), and the
-- assignment metrics and pipeline_report both report it.
select plan(10);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Latency", "settings": {"buffer_minutes": 0},
  "tables": [{"label": "L1", "max_capacity": 2}, {"label": "L2", "max_capacity": 2},
             {"label": "L3", "max_capacity": 2}]}') ->> 'restaurant_id')::bigint as r \gset
create function pg_temp.t(p_label text) returns bigint language sql as
  $$ select id from allocator.tables where label = p_label and restaurant_id =
     (select id from allocator.restaurants where name = 'Latency') $$;

select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b1 \gset
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b2 \gset
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b3 \gset

-- b1 is confirmed on a hold 1.5 s after its creation, b2 by staff after 3 s, b3 never.
select allocator.freeze_clock('2026-06-01 12:00:01.5+00');
select allocator.confirm_hold((allocator.hold_tables(:b1, array[pg_temp.t('L1')]) ->> 'hold_id')::bigint) is not null as x \gset
select allocator.freeze_clock('2026-06-01 12:00:03+00');
select allocator.manual_assign(:b2, array[pg_temp.t('L2')], 'staff:ann', 'regulars') is not null as x \gset
-- Modified and confirmed again later: the first confirmation is what counts.
select allocator.freeze_clock('2026-06-01 12:00:10+00');
select allocator.modify_booking(:b2, (select version from allocator.bookings where id = :b2), p_duration_minutes => 120) is not null as x \gset
select allocator.manual_assign(:b2, array[pg_temp.t('L2')], 'staff:ann', 'regulars again') is not null as x \gset

select results_eq(
  format($$select booking_id, created_to_confirmed_ms from allocator.confirmation_latency
            where restaurant_id = %s order by booking_id$$, :r),
  format($$values (%s::bigint, 1500::numeric), (%s, 3000), (%s, NULL)$$, :b1, :b2, :b3),
  'latency runs from creation to the first confirmation; none before a confirmation');
select is((select created_at from allocator.confirmation_latency where booking_id = :b1),
  '2026-06-01 12:00+00'::timestamptz, 'from the creation');
select is((select confirmed_at from allocator.confirmation_latency where booking_id = :b2),
  '2026-06-01 12:00:03+00'::timestamptz, 'to the first confirmation');

-- A booking that arrived confirmed (imported) was not created here: it has no latency.
insert into allocator.bookings (restaurant_id, party_size, period, state)
values (:r, 2, '[2026-06-01 21:00+00, 2026-06-01 22:00+00)', 'confirmed')
returning id as b4 \gset
insert into allocator.booking_state_history (restaurant_id, booking_id, from_state, to_state, version, actor)
values (:r, :b4, null, 'confirmed', 1, 'staff:import');
select is((select count(*)::int from allocator.confirmation_latency where booking_id = :b4), 0,
  'a booking that arrived confirmed has no created->confirmed latency');

-- The metrics and the pipeline report give the same figures, from the same rows.
select is((select bookings from allocator.assignment_metrics_between('2026-06-01 11:00+00', '2026-06-01 13:00+00')
            where restaurant_id = :r), 3::bigint, 'the metrics count the three bookings created here');
select is((select created_to_confirmed_p50_ms from allocator.assignment_metrics_between('2026-06-01 11:00+00', '2026-06-01 13:00+00')
            where restaurant_id = :r), 2250.000, 'metrics: P50 of 1500 and 3000 ms');
select is((select created_to_confirmed_p95_ms from allocator.assignment_metrics_between('2026-06-01 11:00+00', '2026-06-01 13:00+00')
            where restaurant_id = :r), 2925.000, 'metrics: P95');
select is((allocator.pipeline_report(:r, '2026-06-01 11:00+00') ->> 'bookings')::int, 3,
  'the pipeline report counts the same three bookings');
select is((allocator.pipeline_report(:r, '2026-06-01 11:00+00') ->> 'latency_p50_ms')::numeric, 2250.0,
  'pipeline_report: the same P50');
select is((allocator.pipeline_report(:r, '2026-06-01 11:00+00') ->> 'latency_p95_ms')::numeric, 2925.0,
  'pipeline_report: the same P95');

select * from finish();
