-- The sets of booking states come from the lifecycle tables: terminal from booking_states,
-- final from booking_transitions, settled from terminal plus manual_review. No function or
-- view lists states of its own, and no index names the state.
select plan(15);

select results_eq(
  $$ select s.state, allocator.is_terminal(s.state) from allocator.booking_states s order by s.state $$,
  $$ select s.state, s.terminal from allocator.booking_states s order by s.state $$,
  'is_terminal is booking_states.terminal');
select is(allocator.is_terminal('no_such_state'), NULL, 'an unknown state is neither terminal nor not');

select is(
  (select array_agg(s.state order by s.state) from allocator.booking_states s where allocator.is_settled(s.state)),
  array['cancelled', 'confirmed', 'failed', 'finished', 'manual_review', 'no_show', 'seated'],
  'settled: the terminal states and manual_review');
select is(
  (select array_agg(s.state order by s.state) from allocator.booking_states s where allocator.is_final(s.state)),
  array['cancelled', 'failed', 'finished', 'no_show'],
  'final: the states no transition leaves');
select is(allocator.is_final('no_such_state'), NULL, 'an unknown state is neither final nor not');

-- No index names bookings.state (in its columns, expressions or predicate), so a change of
-- state is a heap-only update; manual review is found through its reason, which a booking has
-- exactly while it is in that state.
select is(
  (select array_agg(c.relname::text order by c.relname)
     from pg_index i join pg_class c on c.oid = i.indexrelid
    where i.indrelid = 'allocator.bookings'::regclass
      and ((select a.attnum from pg_attribute a
             where a.attrelid = i.indrelid and a.attname = 'state') = any (i.indkey::smallint[])
           or pg_get_expr(i.indpred, i.indrelid) ~ '\mstate\M'
           or pg_get_expr(i.indexprs, i.indrelid) ~ '\mstate\M')),
  NULL, 'no index of bookings names its state');
select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "States", "tables": [{"label": "S1", "max_capacity": 2}]}')
  ->> 'restaurant_id')::bigint as r \gset
select (allocator.create_booking(:r, 2, '2026-06-01 19:00+00', 90) ->> 'booking_id')::bigint as b1 \gset
select (allocator.create_booking(:r, 2, '2026-06-01 21:00+00', 90) ->> 'booking_id')::bigint as b2 \gset
select allocator.transition_path(:b1, 1, array['manual_review'], 'worker:w1') is not null as x \gset
select is((select manual_review_reason from allocator.bookings where id = :b1), 'sent to manual review',
  'a booking sent to manual review without a reason gets one');
select throws_ok(
  $$ update allocator.bookings set manual_review_reason = null where state = 'manual_review' $$,
  '23514', NULL, 'a booking in manual review keeps its reason');
select throws_ok(
  $$ update allocator.bookings set manual_review_reason = 'x' where state <> 'manual_review' $$,
  '23514', NULL, 'only a booking in manual review has a reason');

-- A list of three or more booking states in a function or view is a set of its own.
create function pg_temp.state_lists(p_source text) returns integer language sql as $$
  select count(*)::integer
    from regexp_matches(p_source,
           '[[(]((\s*''[a-z_]+''(::text)?\s*,)+\s*''[a-z_]+''(::text)?\s*)[])]', 'g') m
   where (select count(*) from regexp_matches(m[1], '''([a-z_]+)''', 'g') x
           where x[1] in (select b.state from allocator.booking_states b)) >= 3
$$;
select is(pg_temp.state_lists($src$
    if v_booking.state not in ('created', 'capacity_verified', 'assigned') then
    where kind in ('hold', 'confirmed') and b.state in ('assigned', 'assignment_in_progress')
    where state <> ALL (ARRAY['confirmed'::text, 'failed'::text, 'cancelled'::text])
  $src$), 2, 'the check finds lists of three states or more, in code and in view definitions');
select is(
  (select array_agg(s.name order by s.name)
     from (select p.oid::regprocedure::text as name, p.prosrc as source
             from pg_proc p where p.pronamespace = 'allocator'::regnamespace
           union all
           select c.oid::regclass::text, pg_get_viewdef(c.oid)
             from pg_class c where c.relnamespace = 'allocator'::regnamespace and c.relkind in ('v', 'm')) s
    where pg_temp.state_lists(s.source) > 0),
  NULL, 'no function or view lists booking states of its own');

-- The sets follow the tables: a state made terminal, or given a way out, changes them.
select is(allocator.is_settled('assigned'), false, 'assigned is not settled');
update allocator.booking_states set terminal = true where state = 'assigned';
select is(allocator.is_terminal('assigned'), true, 'is_terminal reads booking_states');
select is(allocator.is_settled('assigned'), true, 'and so does is_settled');
insert into allocator.booking_transitions (from_state, to_state, description)
values ('failed', 'created', 'test only');
select is(allocator.is_final('failed'), false, 'is_final reads booking_transitions');

select * from finish();
