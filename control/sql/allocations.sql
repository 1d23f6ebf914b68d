-- Writing allocations: the only path that inserts rows into allocator.allocations, so the
-- exclusion violation always reaches callers as the project's conflict error.
--
-- Lock order. Every writer of allocations locks the rows of the tables it writes, in id
-- order, before it writes (lock_tables), and only then inserts or updates. Two sessions
-- writing one table queue on its row instead of meeting in the exclusion constraint's check,
-- where each could wait for the other's uncommitted row (a cycle only deadlock_timeout
-- breaks). The locks are row locks (FOR NO KEY UPDATE), which need UPDATE on tables: no role
-- but the schema's owner can take them. A writer locks its whole set in one statement, so a
-- single call never waits for a table while it holds a higher one; a transaction that writes
-- several sets in turn can still meet another in a cycle, which PostgreSQL breaks and the
-- caller gets as a conflict.

create or replace function allocator.lock_tables(
  p_restaurant_id bigint,
  p_table_ids bigint[],
  p_wait boolean default true
) returns void
language plpgsql
volatile
as $$
declare
  v_locked integer;
begin
  if p_wait then
    -- Only a wait can end in a cycle; the block (a subtransaction) is entered for it alone.
    begin
      perform 1 from allocator.tables t
       where t.restaurant_id = p_restaurant_id and t.id = any(p_table_ids)
       order by t.id
         for no key update of t;
    exception
      when deadlock_detected then
        perform allocator.raise_error('conflict',
          pg_catalog.format('tables %s are being written by another transaction', p_table_ids),
          'this transaction and another each waited for the other''s tables',
          'retry the call');
    end;
    return;
  end if;
  -- The engine's own plans: a table another transaction is writing makes the plan busy at
  -- once (the caller's savepoint, rolled back, releases what was locked).
  select pg_catalog.count(*) into v_locked
    from (select 1 from allocator.tables t
           where t.restaurant_id = p_restaurant_id and t.id = any(p_table_ids)
           order by t.id
             for no key update of t skip locked) l;
  if v_locked < (select pg_catalog.count(distinct x) from pg_catalog.unnest(p_table_ids) x) then
    perform allocator.raise_error('conflict',
      pg_catalog.format('tables %s are being written by another transaction', p_table_ids),
      null, 'try another plan, or retry');
  end if;
end
$$;

comment on function allocator.lock_tables(bigint, bigint[], boolean) is
  'Lock the rows of the given tables in id order (FOR NO KEY UPDATE) before writing their allocations; with p_wait false a table locked by another transaction raises conflict (RA003) at once, as does a wait cycle';

create or replace function allocator.insert_allocations(
  p_restaurant_id bigint,
  p_booking_id bigint,
  p_table_ids bigint[],
  p_period tstzrange,
  p_kind text,
  p_expires_at timestamptz default null,
  p_hold_id bigint default null
) returns integer
language plpgsql
volatile
as $$
declare
  v_count integer;
  v_table bigint;
  v_holder bigint;
begin
  -- Blocks are written under the same table row locks the caller holds: this sees them all.
  select k.table_id into v_table
    from allocator.table_blocks k
   where k.restaurant_id = p_restaurant_id and k.table_id = any (p_table_ids) and k.period && p_period
   order by k.table_id
   limit 1;
  if found then
    perform allocator.raise_error('conflict',
      pg_catalog.format('table %s is blocked for part of that time', v_table), null,
      'see allocator.table_blocks for the reason');
  end if;
  -- One statement for the whole set, in one subtransaction (the handler's), whatever its size.
  begin
    insert into allocator.allocations
           (restaurant_id, booking_id, table_id, period, kind, expires_at, hold_id)
    select p_restaurant_id, p_booking_id, t.id, p_period, p_kind, p_expires_at, p_hold_id
      from pg_catalog.unnest(p_table_ids) t(id)
     order by t.id;
    get diagnostics v_count = row_count;
  exception
    -- Two sessions inserting overlapping rows at once can each wait for the other while
    -- checking the constraint; the deadlock detector then aborts one: the same conflict.
    when exclusion_violation or deadlock_detected then
      select a.table_id, a.booking_id into v_table, v_holder
        from allocator.allocations a
       where a.restaurant_id = p_restaurant_id and a.table_id = any (p_table_ids) and a.period && p_period
       order by a.table_id
       limit 1;
      perform allocator.raise_error('conflict',
        pg_catalog.format('table %s is already taken for an overlapping period',
                          coalesce(v_table::text, pg_catalog.array_to_string(p_table_ids, ', '))),
        pg_catalog.format('requested %s; held or allocated to booking %s', p_period,
                          coalesce(v_holder::text, 'another transaction')),
        'choose another table or time');
  end;
  return v_count;
end
$$;

comment on function allocator.insert_allocations(bigint, bigint, bigint[], tstzrange, text, timestamptz, bigint) is
  'Insert a hold''s or a confirmed booking''s allocations, one per table; a block or an overlap with another allocation of a table raises conflict (RA003); returns how many';


