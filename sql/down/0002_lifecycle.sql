-- Reverts revision 0002. Roles are cluster-wide and may serve other databases: they stay,
-- but lose every privilege in this schema.
drop view if exists allocator.booking_timeline, allocator.manual_review_queue;
drop function if exists
  allocator.booking_history(bigint),
  allocator.booking_attempts(bigint),
  allocator.manual_assign(bigint, bigint[], text, text),
  allocator.decline_booking(bigint, text, text),
  allocator.force_confirm(bigint, text, text, bigint[]),
  allocator.confirm_on_tables(allocator.bookings, bigint[], boolean, text, text, text),
  allocator.requeue(bigint, text, text, integer),
  allocator.require_staff(text, text),
  allocator.expire_holds(integer),
  allocator.release_hold(bigint, text, text),
  allocator.confirm_hold(bigint, text),
  allocator.lock_hold(bigint),
  allocator.hold_tables(bigint, bigint[], integer, text, text, integer),
  allocator.expire_holds_on(bigint, bigint[], tstzrange),
  allocator.expire_hold(bigint, bigint, bigint, boolean),
  allocator.blocked_period(allocator.bookings),
  allocator.check_table_set(allocator.bookings, bigint[], boolean),
  allocator.hold_json(allocator.holds),
  allocator.close_hold(allocator.holds, text, text, text),
  allocator.cancel_booking(bigint, integer, text, text),
  allocator.modify_booking(bigint, integer, timestamptz, integer, integer, text, text),
  allocator.free_booking_tables(allocator.bookings, text),
  allocator.create_booking(bigint, integer, timestamptz, integer, text, text, jsonb, text),
  allocator.zone_id(bigint, text),
  allocator.booking_period(allocator.restaurants, integer, timestamptz, integer),
  allocator.check_party_size(integer),
  allocator.booking_json(allocator.bookings),
  allocator.dequeue(bigint, bigint),
  allocator.enqueue(bigint, bigint, text, timestamptz, integer),
  allocator.transition(bigint, integer, text, text, text, jsonb),
  allocator.check_can_move(allocator.bookings, text, text, text),
  allocator.check_version(allocator.bookings, integer),
  allocator.record_state(bigint, bigint, text, text, integer, text, text, jsonb),
  allocator.emit_event(bigint, text, bigint, jsonb),
  allocator.actor_role(text),
  allocator.lock_booking(bigint),
  allocator.booking_restaurant(bigint),
  allocator.require_restaurant(bigint);
drop table if exists
  allocator.booking_assignment_attempts,
  allocator.assignment_queue,
  allocator.events,
  allocator.booking_state_history,
  allocator.booking_transitions;

do $$
declare
  v_table text;
begin
  foreach v_table in array array['zones', 'tables', 'table_adjacency', 'table_combinations',
      'bookings', 'allocations', 'holds', 'restaurants'] loop
    execute pg_catalog.format('drop policy if exists tenant_isolation on allocator.%I', v_table);
    execute pg_catalog.format('alter table allocator.%I disable row level security', v_table);
  end loop;
end
$$;
drop table if exists allocator.tenant_members;
drop function if exists allocator.tenant_allows(bigint);

grant execute on all functions in schema allocator to public;
revoke all on all tables in schema allocator from allocator_app, allocator_ops, allocator_readonly;
revoke all on schema allocator from allocator_app, allocator_ops, allocator_readonly;
