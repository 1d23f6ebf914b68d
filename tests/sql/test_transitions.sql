-- Every (from, to) pair of states: allowed ones succeed with exactly one history row and one
-- event; all others fail with invalid_transition (RA005) and change nothing.
select plan((select (count(*) * count(*))::int from allocator.booking_states) + 6);

select allocator.import_layout('{"name": "Transitions", "tables": [{"label": "T1", "max_capacity": 4}]}');

create function pg_temp.new_booking(p_state text) returns bigint language sql as $$
  insert into allocator.bookings (restaurant_id, party_size, period, state, manual_review_reason)
  select id, 2, tstzrange(now() + interval '1 day', now() + interval '1 day 2 hours'), p_state,
         case when p_state = 'manual_review' then 'test' end
    from allocator.restaurants where name = 'Transitions'
  returning id
$$;

create function pg_temp.try_transition(p_from text, p_to text) returns text language plpgsql as $$
declare
  v_id bigint := pg_temp.new_booking(p_from);
  v_history int;
  v_events int;
  v_booking allocator.bookings;
begin
  begin
    perform allocator.transition(v_id, 1, p_to, 'staff:test', 'test');
  exception when sqlstate 'RA005' then
    select * into v_booking from allocator.bookings where id = v_id;
    if v_booking.state = p_from and v_booking.version = 1
       and not exists (select 1 from allocator.booking_state_history where booking_id = v_id)
       and not exists (select 1 from allocator.events where booking_id = v_id) then
      return 'rejected';
    end if;
    return 'rejected but changed';
  end;
  select count(*) into v_history from allocator.booking_state_history
   where booking_id = v_id and from_state = p_from and to_state = p_to and version = 2 and actor = 'staff:test';
  select count(*) into v_events from allocator.events
   where booking_id = v_id and topic = allocator.state_topic(p_from, p_to) and (payload ->> 'version')::int = 2;
  select * into v_booking from allocator.bookings where id = v_id;
  if v_history = 1 and v_events = 1 and v_booking.state = p_to and v_booking.version = 2
     and (select count(*) from allocator.booking_state_history where booking_id = v_id) = 1
     and (select count(*) from allocator.events where booking_id = v_id) = 1 then
    return 'ok';
  end if;
  return format('allowed but history=%s events=%s state=%s version=%s', v_history, v_events, v_booking.state, v_booking.version);
end $$;

select is(pg_temp.try_transition(f.state, t.state),
          case when exists (select 1 from allocator.booking_transitions x
                             where x.from_state = f.state and x.to_state = t.state)
               then 'ok' else 'rejected' end,
          format('%s -> %s', f.state, t.state))
  from allocator.booking_states f cross join allocator.booking_states t
 order by f.state, t.state;

select pg_temp.new_booking('manual_review') as b \gset
select throws_ok(format($$select allocator.transition(%s, 1, 'assignment_pending', 'worker:w1')$$, :b),
  'RA009', NULL, 'a staff-only transition is refused to a worker');
select throws_ok(format($$select allocator.transition(%s, 7, 'cancelled', 'app')$$, :b),
  'RA004', NULL, 'a stale expected version is a conflict of versions');
select is((select version from allocator.bookings where id = :b), 1, 'a refused transition leaves the version');
select throws_ok($$select allocator.transition(-1, 1, 'cancelled', 'app')$$,
  'RA002', NULL, 'an unknown booking is not found');
select throws_ok(format($$select allocator.transition(%s, 1, 'cancelled', 'robot')$$, :b),
  'RA001', 'unknown actor role robot', 'an unknown actor role is rejected');
select throws_ok(format($$select allocator.transition(%s, 1, 'seated', 'app')$$, :b),
  'RA005', NULL, 'an unknown state is not a transition');

select * from finish();
