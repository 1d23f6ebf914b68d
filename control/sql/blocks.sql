-- Blocked tables: a table out of use for a period, with a reason (docs/floor.md). A block is
-- written after the tables' row locks, like every allocation, so that no booking is seated on
-- a table a block takes at the same moment.

-- The blocks on a restaurant's tables that overlap p_period.
create or replace function allocator.blocked_table_ids(p_restaurant_id bigint, p_period tstzrange) returns bigint[]
language sql
stable
as $$
  select coalesce(pg_catalog.array_agg(distinct k.table_id), '{}')
    from allocator.table_blocks k
   where k.restaurant_id = p_restaurant_id and k.period && p_period
$$;

comment on function allocator.blocked_table_ids(bigint, tstzrange) is
  'The restaurant''s tables blocked at some point of p_period';

create or replace function allocator.block_tables(
  p_restaurant_id bigint,
  p_table_ids bigint[],
  p_from timestamptz,
  p_to timestamptz,
  p_reason text,
  p_actor text default 'staff'
) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_ids bigint[];
  v_period tstzrange;
  v_booking allocator.bookings;
  v_reseated jsonb := '[]'::jsonb;
  v_review jsonb := '[]'::jsonb;
  v_seated jsonb;
  v_blocks bigint[];
begin
  perform allocator.actor_role(p_actor);
  perform allocator.check_range('a block', p_from, p_to);
  if p_to - p_from > interval '90 days' or p_to < allocator.now() then
    perform allocator.raise_error('invalid_argument', 'a block lasts at most 90 days and ends in the future',
      pg_catalog.format('got %s to %s', p_from, p_to), 'deactivate a table that is gone for good');
  end if;
  if p_reason is null or pg_catalog.btrim(p_reason) = '' then
    perform allocator.raise_error('invalid_argument', 'a block needs a reason');
  end if;
  perform allocator.check_length('reason', p_reason, 'reason_chars');
  if p_table_ids is null or pg_catalog.cardinality(p_table_ids) = 0
     or pg_catalog.cardinality(p_table_ids) > allocator.limit_of('tables_per_restaurant') then
    perform allocator.raise_error('invalid_argument', 'a block needs the ids of one or more tables');
  end if;
  select pg_catalog.array_agg(t.id order by t.id) into v_ids
    from allocator.tables t where t.restaurant_id = v_restaurant.id and t.id = any (p_table_ids);
  if pg_catalog.cardinality(v_ids) is distinct from
     (select pg_catalog.count(distinct x)::integer from pg_catalog.unnest(p_table_ids) x where x is not null)
     or pg_catalog.array_position(p_table_ids, null) is not null then
    perform allocator.raise_error('not_found',
      pg_catalog.format('not every table of %s is a table of restaurant %s', p_table_ids, v_restaurant.id));
  end if;
  v_period := pg_catalog.tstzrange(p_from, p_to, '[)');
  -- Everyone who writes these tables' allocations waits from here on.
  perform allocator.lock_tables(v_restaurant.id, v_ids, true);
  if exists (select 1 from allocator.allocations a
               join allocator.bookings b on b.restaurant_id = a.restaurant_id and b.id = a.booking_id
              where a.restaurant_id = v_restaurant.id and a.table_id = any (v_ids) and a.period && v_period
                and (b.state = 'seated' or (a.kind = 'hold' and a.expires_at > allocator.now()))) then
    perform allocator.raise_error('conflict',
      'a table to block has a seated party or a live hold in that time', null,
      'block after the party leaves, or when the hold is confirmed or gone');
  end if;
  begin
    insert into allocator.table_blocks (restaurant_id, table_id, period, reason, created_by)
    select v_restaurant.id, x, v_period, p_reason, p_actor from pg_catalog.unnest(v_ids) x;
  exception when exclusion_violation then
    perform allocator.raise_error('conflict', 'a table to block is blocked already for part of that time');
  end;
  select pg_catalog.array_agg(k.id order by k.id) into v_blocks
    from allocator.table_blocks k
   where k.restaurant_id = v_restaurant.id and k.table_id = any (v_ids) and k.period = v_period;
  -- The bookings confirmed on those tables then are seated elsewhere, or go to a person.
  for v_booking in
    select b.* from allocator.bookings b
     where b.restaurant_id = v_restaurant.id and b.state = 'confirmed'
       and b.id in (select a.booking_id from allocator.allocations a
                     where a.restaurant_id = v_restaurant.id and a.table_id = any (v_ids)
                       and a.period && v_period and a.kind = 'confirmed')
     order by b.id
     for update
  loop
    perform allocator.free_booking_tables(v_booking, 'released');
    v_booking := allocator.transition(v_booking.id, v_booking.version, 'created', p_actor, 'table_blocked',
      pg_catalog.jsonb_build_object('blocks', v_blocks));
    begin
      v_seated := allocator.seat_at_once(v_booking, p_actor, pg_catalog.clock_timestamp(), null,
        v_booking.preferred_zone_id);
      v_reseated := v_reseated || pg_catalog.jsonb_build_object('booking_id', v_booking.id,
        'table_ids', v_seated -> 'table_ids');
    exception when sqlstate 'RA014' then
      perform allocator.transition(v_booking.id, v_booking.version, 'manual_review', p_actor, 'table_blocked',
        pg_catalog.jsonb_build_object('blocks', v_blocks));
      v_review := v_review || pg_catalog.to_jsonb(v_booking.id);
    end;
  end loop;
  return pg_catalog.jsonb_build_object('block_ids', v_blocks, 'table_ids', v_ids, 'from', p_from, 'to', p_to,
    'reseated', v_reseated, 'manual_review', v_review);
end
$$;

comment on function allocator.block_tables(bigint, bigint[], timestamptz, timestamptz, text, text) is
  'Block tables from p_from to p_to with a reason (at most 90 days): nobody is seated on them then. Bookings confirmed on them are seated elsewhere in the same transaction, or sent to manual review with reason table_blocked; refused (RA003) over a seated party, a live hold or another block';

create or replace function allocator.unblock_tables(p_restaurant_id bigint, p_block_ids bigint[], p_actor text default 'staff')
returns integer
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_count integer;
begin
  perform allocator.actor_role(p_actor);
  if p_block_ids is null or pg_catalog.cardinality(p_block_ids) > 10000 then
    perform allocator.raise_error('invalid_argument', 'give the ids of the blocks to remove (at most 10,000)');
  end if;
  delete from allocator.table_blocks k where k.restaurant_id = v_restaurant.id and k.id = any (p_block_ids);
  get diagnostics v_count = row_count;
  if v_count > 0 then
    perform allocator.offer_waitlist(v_restaurant.id);
  end if;
  return v_count;
end
$$;

comment on function allocator.unblock_tables(bigint, bigint[], text) is
  'Remove blocks by id; returns how many (bookings sent to manual review by a block stay there)';
