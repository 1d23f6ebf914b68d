-- Changing a restaurant's settings by patch, so one flag can change without restating the rest.

-- Objects in the patch are merged into the stored settings one level deep (flags, retry,
-- strategy_weights, breaker); other keys replace the stored value. A JSON null removes a
-- key, which brings back its default.
create or replace function allocator.update_settings(p_restaurant_id bigint, p_patch jsonb) returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_restaurant allocator.restaurants := allocator.require_restaurant(p_restaurant_id);
  v_settings jsonb := v_restaurant.settings;
  v_key text;
  v_value jsonb;
begin
  if p_patch is null or pg_catalog.jsonb_typeof(p_patch) <> 'object' then
    perform allocator.raise_error('invalid_settings', 'the settings patch must be a JSON object');
  end if;
  perform allocator.check_size('the settings patch', p_patch, 'settings_bytes');
  for v_key, v_value in select e.key, e.value from pg_catalog.jsonb_each(p_patch) e loop
    if pg_catalog.jsonb_typeof(v_value) = 'null' and v_key <> 'preferred_zone' then
      v_settings := v_settings - v_key;
    elsif v_key in ('flags', 'retry', 'strategy_weights', 'breaker', 'pooling')
          and pg_catalog.jsonb_typeof(v_value) = 'object'
          and pg_catalog.jsonb_typeof(v_settings -> v_key) = 'object' then
      v_settings := pg_catalog.jsonb_set(v_settings, array[v_key], (v_settings -> v_key) || v_value);
    else
      v_settings := pg_catalog.jsonb_set(v_settings, array[v_key], v_value, true);
    end if;
  end loop;
  update allocator.restaurants r set settings = v_settings, updated_at = allocator.now()
   where r.id = p_restaurant_id
  returning r.settings into v_settings;
  return v_settings;
end
$$;

comment on function allocator.update_settings(bigint, jsonb) is
  'Patch a restaurant''s settings: grouped keys (flags, retry, strategy_weights, breaker) merge, others replace, null restores the default; validated like any write';

-- Deletes a restaurant and everything it owns. Its bookings go first: allocations block the
-- deletion of a table on purpose (deactivate a table instead), so they must be gone before
-- the tables are.
create or replace function allocator.delete_restaurant(p_restaurant_id bigint) returns boolean
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
begin
  perform allocator.require_restaurant(p_restaurant_id);
  delete from allocator.bookings b where b.restaurant_id = p_restaurant_id;
  delete from allocator.restaurants r where r.id = p_restaurant_id;
  return found;
end
$$;

comment on function allocator.delete_restaurant(bigint) is
  'Delete a restaurant with its bookings, layout and history';


