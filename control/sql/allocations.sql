-- Writing allocations: the only path that inserts rows into allocator.allocations, so the
-- exclusion violation always reaches callers as the project's conflict error.

create or replace function allocator.insert_allocation(
  p_restaurant_id bigint,
  p_booking_id bigint,
  p_table_id bigint,
  p_period tstzrange,
  p_kind text,
  p_expires_at timestamptz default null,
  p_hold_id bigint default null
) returns bigint
language plpgsql
volatile
as $$
declare
  v_id bigint;
  v_holder bigint;
begin
  insert into allocator.allocations
         (restaurant_id, booking_id, table_id, period, kind, expires_at, hold_id)
  values (p_restaurant_id, p_booking_id, p_table_id, p_period, p_kind, p_expires_at, p_hold_id)
  returning id into v_id;
  return v_id;
exception
  -- Two sessions inserting overlapping rows at once can each wait for the other while
  -- checking the constraint; the deadlock detector then aborts one: the same conflict.
  when exclusion_violation or deadlock_detected then
    select a.booking_id into v_holder
      from allocator.allocations a
     where a.restaurant_id = p_restaurant_id and a.table_id = p_table_id and a.period && p_period
     limit 1;
    perform allocator.raise_error('conflict',
      pg_catalog.format('table %s is already taken for an overlapping period', p_table_id),
      pg_catalog.format('requested %s; held or allocated to booking %s', p_period,
                        coalesce(v_holder::text, 'another transaction')),
      'choose another table or time');
    return null;
end
$$;

comment on function allocator.insert_allocation(bigint, bigint, bigint, tstzrange, text, timestamptz, bigint) is
  'Insert one hold or confirmed allocation; an overlap with another allocation of the table raises conflict (RA003)';


