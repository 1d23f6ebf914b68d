-- Restaurant settings: defaults, validation, and the look-ups other functions need.

create or replace function allocator.default_settings() returns jsonb
language sql
immutable
parallel safe
as $$
  select '{
    "turn_minutes": {"2": 90, "4": 120, "6": 150, "8": 180},
    "buffer_minutes": 15,
    "hold_ttl_seconds": 120,
    "max_combination_size": 3,
    "preferred_zone": null,
    "locale": "en",
    "retry": {"max_attempts": 5, "base_delay_ms": 500, "max_delay_ms": 60000, "jitter": 0.2, "max_deferrals": 100},
    "strategy_weights": {
      "optimal_fit": 1.0,
      "adjacency": 0.6,
      "zone_preference": 0.5,
      "load_balancing": 0.3,
      "historical_success": 0.2
    },
    "breaker": {"failure_threshold": 5, "cooldown_seconds": 30},
    "pooling": {"enabled": false, "cutoff": "03:30", "fallback_minutes": 30},
    "floor": {"early_seating_minutes": 60, "no_show_minutes": 30, "predicted_turns": false, "offer_minutes": 10},
    "flexible_tables": {"enabled": true, "lock_minutes": 60, "budget_ms": 10},
    "flags": {
      "pipeline_enabled": true,
      "shadow": false,
      "max_parallel": 3,
      "rollout_percent": 100,
      "kill_switch": false
    }
  }'::jsonb
$$;

comment on function allocator.default_settings() is
  'The settings a restaurant gets for every key it does not set (docs/schema.md explains each key)';

-- Raises invalid_settings unless p_value is a JSON integer in [p_min, p_max].
create or replace function allocator.check_setting_int(p_path text, p_value jsonb, p_min bigint, p_max bigint)
returns void
language plpgsql
immutable
as $$
begin
  if p_value is null or pg_catalog.jsonb_typeof(p_value) <> 'number'
     or p_value::text !~ '^-?[0-9]+$'
     or p_value::text::numeric not between p_min and p_max then
    perform allocator.raise_error(
      'invalid_settings',
      pg_catalog.format('setting %s must be an integer from %s to %s', p_path, p_min, p_max),
      pg_catalog.format('got %s', coalesce(p_value::text, 'nothing')));
  end if;
end
$$;

comment on function allocator.check_setting_int(text, jsonb, bigint, bigint) is
  'Validate one integer setting, raising invalid_settings (RA006) with its path';

-- A turn-time table: {"<largest party size>": minutes, ...}; parties above the largest key
-- use it. The restaurant's setting and a service's own table are checked alike.
create or replace function allocator.check_turn_minutes(p_path text, p_value jsonb) returns void
language plpgsql
immutable
as $$
declare
  v_key text;
begin
  if p_value is null or pg_catalog.jsonb_typeof(p_value) <> 'object' or p_value = '{}'::jsonb then
    perform allocator.raise_error('invalid_settings',
      pg_catalog.format('setting %s must be a non-empty object of party size to minutes', p_path),
      pg_catalog.format('got %s', coalesce(p_value::text, 'nothing')),
      'for example {"2": 90, "4": 120, "8": 180}');
  end if;
  for v_key in select k from pg_catalog.jsonb_object_keys(p_value) as k loop
    if v_key !~ '^[0-9]{1,3}$' or v_key::int not between 1 and 100 then
      perform allocator.raise_error('invalid_settings',
        pg_catalog.format('setting %s has key %s; keys are party sizes from 1 to 100', p_path, v_key));
    end if;
    perform allocator.check_setting_int(p_path || '.' || v_key, p_value -> v_key, 15, 720);
  end loop;
end
$$;

comment on function allocator.check_turn_minutes(text, jsonb) is
  'Validate a turn-time table (party size to minutes, 15 to 720), raising invalid_settings (RA006) with its path';

create or replace function allocator.check_setting_number(p_path text, p_value jsonb, p_min numeric, p_max numeric)
returns void
language plpgsql
immutable
as $$
begin
  if p_value is null or pg_catalog.jsonb_typeof(p_value) <> 'number'
     or p_value::text::numeric not between p_min and p_max then
    perform allocator.raise_error(
      'invalid_settings',
      pg_catalog.format('setting %s must be a number from %s to %s', p_path, p_min, p_max),
      pg_catalog.format('got %s', coalesce(p_value::text, 'nothing')));
  end if;
end
$$;

comment on function allocator.check_setting_number(text, jsonb, numeric, numeric) is
  'Validate one numeric setting, raising invalid_settings (RA006) with its path';

create or replace function allocator.check_setting_bool(p_path text, p_value jsonb) returns void
language plpgsql
immutable
as $$
begin
  if p_value is null or pg_catalog.jsonb_typeof(p_value) <> 'boolean' then
    perform allocator.raise_error(
      'invalid_settings',
      pg_catalog.format('setting %s must be true or false', p_path),
      pg_catalog.format('got %s', coalesce(p_value::text, 'nothing')));
  end if;
end
$$;

comment on function allocator.check_setting_bool(text, jsonb) is
  'Validate one boolean setting, raising invalid_settings (RA006) with its path';

-- Merges p_settings over the defaults (one level deep for the grouped keys) and validates
-- every key; unknown keys are errors so that a typo never silently falls back to a default.
create or replace function allocator.validate_settings(p_settings jsonb) returns jsonb
language plpgsql
immutable
as $$
declare
  v_defaults constant jsonb := allocator.default_settings();
  v_result jsonb;
  v_key text;
  v_group text;
  v_value jsonb;
begin
  if p_settings is null then
    return v_defaults;
  end if;
  if pg_catalog.jsonb_typeof(p_settings) <> 'object' then
    perform allocator.raise_error('invalid_settings', 'settings must be a JSON object',
      pg_catalog.format('got %s', pg_catalog.jsonb_typeof(p_settings)));
  end if;
  if pg_catalog.octet_length(p_settings::text) > allocator.limit_of('settings_bytes') then
    perform allocator.raise_error('invalid_settings',
      pg_catalog.format('settings must be at most %s bytes of JSON', allocator.limit_of('settings_bytes')),
      pg_catalog.format('got %s', pg_catalog.octet_length(p_settings::text)));
  end if;
  for v_key in select k from pg_catalog.jsonb_object_keys(p_settings) as k loop
    if not v_defaults ? v_key then
      perform allocator.raise_error('invalid_settings',
        pg_catalog.format('unknown setting %s', v_key),
        null,
        'known settings: ' || (select pg_catalog.string_agg(k, ', ' order by k)
                                from pg_catalog.jsonb_object_keys(v_defaults) as k));
    end if;
  end loop;

  v_result := v_defaults || p_settings;
  foreach v_group in array array['retry', 'strategy_weights', 'breaker', 'pooling', 'flags', 'floor', 'flexible_tables'] loop
    v_value := p_settings -> v_group;
    if v_value is null then
      continue;
    end if;
    if pg_catalog.jsonb_typeof(v_value) <> 'object' then
      perform allocator.raise_error('invalid_settings',
        pg_catalog.format('setting %s must be a JSON object', v_group));
    end if;
    for v_key in select k from pg_catalog.jsonb_object_keys(v_value) as k loop
      if not (v_defaults -> v_group) ? v_key then
        perform allocator.raise_error('invalid_settings',
          pg_catalog.format('unknown setting %s.%s', v_group, v_key),
          null,
          pg_catalog.format('known keys of %s: %s', v_group,
            (select pg_catalog.string_agg(k, ', ' order by k)
               from pg_catalog.jsonb_object_keys(v_defaults -> v_group) as k)));
      end if;
    end loop;
    v_result := pg_catalog.jsonb_set(v_result, array[v_group], (v_defaults -> v_group) || v_value);
  end loop;

  perform allocator.check_turn_minutes('turn_minutes', v_result -> 'turn_minutes');

  perform allocator.check_setting_int('buffer_minutes', v_result -> 'buffer_minutes', 0, 240);
  if pg_catalog.jsonb_typeof(v_result -> 'locale') is distinct from 'string'
     or (v_result ->> 'locale') !~ '^[a-z]{2,3}(-[A-Z]{2})?$' then
    perform allocator.raise_error('invalid_settings',
      'setting locale must be a language tag such as en, it or pt-BR',
      pg_catalog.format('got %s', coalesce((v_result -> 'locale')::text, 'nothing')));
  end if;
  perform allocator.check_setting_int('hold_ttl_seconds', v_result -> 'hold_ttl_seconds', 1, 3600);
  perform allocator.check_setting_int('max_combination_size', v_result -> 'max_combination_size', 1,
    allocator.limit_of('combination_size'));
  v_value := v_result -> 'preferred_zone';
  if pg_catalog.jsonb_typeof(v_value) not in ('null', 'string')
     or pg_catalog.length(v_value #>> '{}') > allocator.limit_of('name_chars') then
    perform allocator.raise_error('invalid_settings',
      pg_catalog.format('setting preferred_zone must be a zone name of at most %s characters or null',
        allocator.limit_of('name_chars')),
      pg_catalog.format('got %s', pg_catalog.left(v_value::text, 100)));
  end if;

  perform allocator.check_setting_int('retry.max_attempts', v_result #> '{retry,max_attempts}', 1, 50);
  perform allocator.check_setting_int('retry.base_delay_ms', v_result #> '{retry,base_delay_ms}', 0, 3600000);
  perform allocator.check_setting_int('retry.max_delay_ms', v_result #> '{retry,max_delay_ms}',
    (v_result #>> '{retry,base_delay_ms}')::bigint, 86400000);
  perform allocator.check_setting_number('retry.jitter', v_result #> '{retry,jitter}', 0, 1);
  perform allocator.check_setting_int('retry.max_deferrals', v_result #> '{retry,max_deferrals}', 1, 10000);

  for v_key in select k from pg_catalog.jsonb_object_keys(v_result -> 'strategy_weights') as k loop
    perform allocator.check_setting_number('strategy_weights.' || v_key,
      v_result #> array['strategy_weights', v_key], 0, 100);
  end loop;

  perform allocator.check_setting_int('floor.early_seating_minutes', v_result #> '{floor,early_seating_minutes}', 0, 240);
  perform allocator.check_setting_int('floor.no_show_minutes', v_result #> '{floor,no_show_minutes}', 5, 240);
  perform allocator.check_setting_bool('floor.predicted_turns', v_result #> '{floor,predicted_turns}');
  perform allocator.check_setting_int('floor.offer_minutes', v_result #> '{floor,offer_minutes}', 1, 60);
  perform allocator.check_setting_int('breaker.failure_threshold', v_result #> '{breaker,failure_threshold}', 1, 1000);
  perform allocator.check_setting_int('breaker.cooldown_seconds', v_result #> '{breaker,cooldown_seconds}', 1, 86400);

  perform allocator.check_setting_bool('flexible_tables.enabled', v_result #> '{flexible_tables,enabled}');
  perform allocator.check_setting_int('flexible_tables.lock_minutes', v_result #> '{flexible_tables,lock_minutes}', 0, 10080);
  perform allocator.check_setting_int('flexible_tables.budget_ms', v_result #> '{flexible_tables,budget_ms}', 1, 1000);
  perform allocator.check_setting_bool('pooling.enabled', v_result #> '{pooling,enabled}');
  v_value := v_result #> '{pooling,cutoff}';
  if pg_catalog.jsonb_typeof(v_value) is distinct from 'string'
     or v_value #>> '{}' !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' then
    perform allocator.raise_error('invalid_settings',
      'setting pooling.cutoff must be a local time of day as HH:MM',
      pg_catalog.format('got %s', coalesce(v_value::text, 'nothing')), 'for example "03:30"');
  end if;
  perform allocator.check_setting_int('pooling.fallback_minutes', v_result #> '{pooling,fallback_minutes}', 5, 1440);

  perform allocator.check_setting_bool('flags.pipeline_enabled', v_result #> '{flags,pipeline_enabled}');
  perform allocator.check_setting_bool('flags.shadow', v_result #> '{flags,shadow}');
  perform allocator.check_setting_bool('flags.kill_switch', v_result #> '{flags,kill_switch}');
  perform allocator.check_setting_int('flags.max_parallel', v_result #> '{flags,max_parallel}', 1, 64);
  perform allocator.check_setting_int('flags.rollout_percent', v_result #> '{flags,rollout_percent}', 0, 100);
  return v_result;
end
$$;

comment on function allocator.validate_settings(jsonb) is
  'Complete p_settings with the defaults and validate every key; raises invalid_settings (RA006)';

-- Pooled assignment: a booking of a pooling restaurant waits for the cut-off of its local day
-- (the nightly optimizer seats the day's pool then). Null when it does not wait: pooling is
-- off, or the booking starts too soon after the cut-off for waiting to make sense.
create or replace function allocator.pool_cutoff(p_timezone text, p_settings jsonb, p_start timestamptz)
returns timestamptz
language plpgsql
stable
as $$
declare
  v_at timestamptz;
begin
  if not coalesce((p_settings #>> '{pooling,enabled}')::boolean, false) then
    return null;
  end if;
  v_at := ((p_start at time zone p_timezone)::date + (p_settings #>> '{pooling,cutoff}')::time) at time zone p_timezone;
  if p_start > v_at + pg_catalog.make_interval(mins => (p_settings #>> '{pooling,fallback_minutes}')::integer) then
    return v_at;
  end if;
  return null;
end
$$;

comment on function allocator.pool_cutoff(text, jsonb, timestamptz) is
  'When a booking starting at p_start stops waiting for the day''s pool: the pooling.cutoff local time of its day; null if the restaurant does not pool or the booking starts within pooling.fallback_minutes of the cut-off';

create or replace function allocator.is_valid_timezone(p_timezone text) returns boolean
language sql
stable
strict
as $$
  select exists (select 1 from pg_catalog.pg_timezone_names where name = p_timezone)
$$;

comment on function allocator.is_valid_timezone(text) is
  'Whether p_timezone is an IANA time zone name PostgreSQL knows (Europe/Paris, America/New_York, UTC)';

-- The turn time for a party: the entry with the smallest party-size key that fits, else the largest.
create or replace function allocator.turn_minutes(p_settings jsonb, p_party_size integer) returns integer
language plpgsql
immutable
strict
parallel safe
as $$
begin
  return coalesce(
    (select t.value::int from pg_catalog.jsonb_each_text(p_settings -> 'turn_minutes') t
      where t.key::int >= p_party_size order by t.key::int limit 1),
    (select t.value::int from pg_catalog.jsonb_each_text(p_settings -> 'turn_minutes') t
      order by t.key::int desc limit 1));
end
$$;

comment on function allocator.turn_minutes(jsonb, integer) is
  'Turn time in minutes for a party of p_party_size under the given restaurant settings';

create or replace function allocator.restaurants_validate() returns trigger
language plpgsql
as $$
begin
  if new.name is null or pg_catalog.btrim(new.name) = '' then
    perform allocator.raise_error('invalid_argument', 'restaurant name must not be empty');
  end if;
  perform allocator.check_length('restaurant name', new.name);
  if new.timezone is null or pg_catalog.length(new.timezone) > allocator.limit_of('name_chars')
     or not allocator.is_valid_timezone(new.timezone) then
    perform allocator.raise_error('invalid_settings',
      pg_catalog.format('unknown time zone %s', coalesce(pg_catalog.left(new.timezone, 100), 'NULL')),
      null,
      'use an IANA name such as Europe/Paris; SELECT name FROM pg_timezone_names lists them');
  end if;
  new.settings := allocator.validate_settings(new.settings);
  return new;
end
$$;

comment on function allocator.restaurants_validate() is
  'Trigger: validate a restaurant''s name, time zone and settings before it is written';

create or replace trigger restaurants_validate
  before insert or update of name, timezone, settings on allocator.restaurants
  for each row execute function allocator.restaurants_validate();


