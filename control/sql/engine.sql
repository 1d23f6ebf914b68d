-- Whether the restaurant's breaker lets a call through now: closed and half-open do; open
-- turns half-open once its cooldown has passed. Returns the state the call runs under.
create or replace function allocator.breaker_allow(p_restaurant_id bigint) returns text
language plpgsql
volatile
as $$
declare
  v_breaker allocator.circuit_breakers;
  v_cooldown integer;
begin
  select b.* into v_breaker from allocator.circuit_breakers b where b.restaurant_id = p_restaurant_id;
  if not found or v_breaker.state = 'closed' then
    return 'closed';
  end if;
  if v_breaker.state = 'open' then
    select (r.settings #>> '{breaker,cooldown_seconds}')::integer into v_cooldown
      from allocator.restaurants r where r.id = p_restaurant_id;
    if allocator.now() < v_breaker.opened_at + pg_catalog.make_interval(secs => v_cooldown) then
      return 'open';
    end if;
    update allocator.circuit_breakers b set state = 'half_open', updated_at = allocator.now()
     where b.restaurant_id = p_restaurant_id and b.state = 'open';
    perform allocator.emit_event(p_restaurant_id, 'breaker.half_open', null,
      pg_catalog.jsonb_build_object('restaurant_id', p_restaurant_id));
  end if;
  return 'half_open';
end
$$;

comment on function allocator.breaker_allow(bigint) is
  'Circuit breaker check: ''closed'' or ''half_open'' lets the call through, ''open'' does not (open turns half_open after cooldown_seconds)';

-- Records the outcome of a call: a success closes the breaker; a failure in half-open, or
-- the failure_threshold-th in a row, opens it. Returns the new state.
create or replace function allocator.breaker_record(p_restaurant_id bigint, p_success boolean) returns text
language plpgsql
volatile
as $$
declare
  v_threshold integer;
  v_breaker allocator.circuit_breakers;
begin
  select (r.settings #>> '{breaker,failure_threshold}')::integer into v_threshold
    from allocator.restaurants r where r.id = p_restaurant_id;
  insert into allocator.circuit_breakers as b (restaurant_id) values (p_restaurant_id)
  on conflict (restaurant_id) do nothing;
  select b.* into v_breaker from allocator.circuit_breakers b where b.restaurant_id = p_restaurant_id for update;
  if p_success then
    if v_breaker.state <> 'closed' or v_breaker.failures <> 0 then
      update allocator.circuit_breakers b set state = 'closed', failures = 0, opened_at = null, updated_at = allocator.now()
       where b.restaurant_id = p_restaurant_id;
      if v_breaker.state <> 'closed' then
        perform allocator.emit_event(p_restaurant_id, 'breaker.closed', null,
          pg_catalog.jsonb_build_object('restaurant_id', p_restaurant_id));
      end if;
    end if;
    return 'closed';
  end if;
  if v_breaker.state = 'half_open' or v_breaker.failures + 1 >= v_threshold then
    update allocator.circuit_breakers b
       set state = 'open', failures = v_breaker.failures + 1, opened_at = allocator.now(), updated_at = allocator.now()
     where b.restaurant_id = p_restaurant_id;
    perform allocator.emit_event(p_restaurant_id, 'breaker.opened', null,
      pg_catalog.jsonb_build_object('restaurant_id', p_restaurant_id, 'failures', v_breaker.failures + 1));
    return 'open';
  end if;
  update allocator.circuit_breakers b set failures = v_breaker.failures + 1, updated_at = allocator.now()
   where b.restaurant_id = p_restaurant_id;
  return v_breaker.state;
end
$$;

comment on function allocator.breaker_record(bigint, boolean) is
  'Record a success (closes the breaker) or a failure (opens it in half_open or at failure_threshold) and return the new state';

-- Exponential backoff with deterministic jitter: base * 2^(attempt-1), capped at max, then
-- moved by up to +-jitter, pseudo-randomly but reproducibly per booking and attempt.
create or replace function allocator.backoff_ms(p_settings jsonb, p_booking_id bigint, p_attempt integer) returns integer
language sql
immutable
parallel safe
as $$
  select pg_catalog.round(least(
           (p_settings #>> '{retry,max_delay_ms}')::numeric,
           (p_settings #>> '{retry,base_delay_ms}')::numeric * pg_catalog.power(2, greatest(p_attempt, 1) - 1)
           * (1 + (p_settings #>> '{retry,jitter}')::numeric
                  * ((pg_catalog.abs(pg_catalog.hashtext(p_booking_id::text || ':' || p_attempt::text)) % 2001) / 1000.0 - 1))
         ))::integer
$$;

comment on function allocator.backoff_ms(jsonb, bigint, integer) is
  'Retry delay in ms for an attempt: base_delay_ms * 2^(attempt-1) with a reproducible jitter of +-jitter, never above max_delay_ms';

-- A per-restaurant concurrency permit: one of max_parallel transaction-scoped advisory
-- locks. Released with the transaction, so a crash leaks nothing.
create or replace function allocator.take_permit(p_restaurant_id bigint, p_max_parallel integer) returns integer
language plpgsql
volatile
as $$
begin
  for v_slot in 0 .. p_max_parallel - 1 loop
    if pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('allocator.permit'),
         ((p_restaurant_id * 64 + v_slot) % 2147483647)::integer) then
      return v_slot;
    end if;
  end loop;
  return null;
end
$$;

comment on function allocator.take_permit(bigint, integer) is
  'Take one of the restaurant''s max_parallel assignment permits for this transaction; the slot number, or NULL if all are taken';

-- Whether the restaurant is in the engine's rollout: a stable hash of its id against the percentage.
create or replace function allocator.in_rollout(p_restaurant_id bigint, p_percent integer) returns boolean
language sql
immutable
parallel safe
as $$
  select pg_catalog.abs(pg_catalog.hashtext('rollout:' || p_restaurant_id::text)) % 100 < p_percent
$$;

comment on function allocator.in_rollout(bigint, integer) is
  'Deterministic rollout: whether a restaurant falls within the first p_percent percent';

create or replace function allocator.record_attempt(
  p_booking allocator.bookings,
  p_attempt integer,
  p_worker text,
  p_strategy text,
  p_table_ids bigint[],
  p_score numeric,
  p_result text,
  p_reason text,
  p_started timestamptz,
  p_metadata jsonb default '{}'::jsonb
) returns void
language sql
volatile
as $$
  insert into allocator.booking_assignment_attempts
         (restaurant_id, booking_id, attempt, worker, strategy, table_ids, score, result, reason, duration_ms, metadata)
  values (p_booking.restaurant_id, p_booking.id, p_attempt, p_worker, p_strategy, p_table_ids, p_score, p_result,
          p_reason, pg_catalog.round((extract(epoch from pg_catalog.clock_timestamp() - p_started) * 1000)::numeric, 3),
          coalesce(p_metadata, '{}'::jsonb)
            || pg_catalog.jsonb_build_object('started_at', p_started, 'finished_at', pg_catalog.clock_timestamp(),
                                             'backend_pid', pg_catalog.pg_backend_pid()))
$$;

comment on function allocator.record_attempt(allocator.bookings, integer, text, text, bigint[], numeric, text, text, timestamptz, jsonb) is
  'Write one booking_assignment_attempts row (duration measured from p_started)';

create or replace function allocator.outcome(
  p_outcome text, p_reason text, p_attempt integer, p_delay_ms integer default null,
  p_strategy text default null, p_table_ids bigint[] default null, p_booking_id bigint default null
) returns jsonb
language sql
immutable
as $$
  select pg_catalog.jsonb_build_object('outcome', p_outcome, 'reason', p_reason, 'delay_ms', p_delay_ms,
    'attempt', p_attempt, 'strategy', p_strategy, 'tables', pg_catalog.to_jsonb(p_table_ids), 'booking_id', p_booking_id)
$$;

comment on function allocator.outcome(text, text, integer, integer, text, bigint[], bigint) is
  'The jsonb process_booking returns';

-- Puts a booking that could not be seated now back on the queue, or into manual review
-- once it has used its attempts.
create or replace function allocator.retry_or_review(
  p_booking allocator.bookings,
  p_settings jsonb,
  p_attempt integer,
  p_reason text,
  p_actor text
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_delay integer;
begin
  if p_attempt >= (p_settings #>> '{retry,max_attempts}')::integer then
    perform allocator.transition(p_booking.id, p_booking.version, 'manual_review', p_actor,
      pg_catalog.format('%s after %s attempts', p_reason, p_attempt));
    perform allocator.dequeue(p_booking.restaurant_id, p_booking.id);
    return allocator.outcome('manual_review', p_reason, p_attempt, null, null, null, p_booking.id);
  end if;
  v_delay := allocator.backoff_ms(p_settings, p_booking.id, p_attempt);
  perform allocator.transition(p_booking.id, p_booking.version, 'assignment_pending', p_actor, p_reason,
    pg_catalog.jsonb_build_object('attempt', p_attempt, 'delay_ms', v_delay));
  perform allocator.enqueue(p_booking.restaurant_id, p_booking.id, p_reason,
    allocator.now() + pg_catalog.make_interval(secs => v_delay / 1000.0), p_attempt);
  return allocator.outcome('retry', p_reason, p_attempt, v_delay, null, null, p_booking.id);
end
$$;

comment on function allocator.retry_or_review(allocator.bookings, jsonb, integer, text, text) is
  'Schedule a retry with backoff, or send the booking to manual_review once max_attempts is reached';

create or replace function allocator.process_booking(p_booking_id bigint, p_worker text default 'worker')
returns jsonb
language plpgsql
volatile
security definer
set search_path = pg_catalog, pg_temp
as $$
declare
  v_started timestamptz := pg_catalog.clock_timestamp();
  v_actor text;
  v_booking allocator.bookings;
  v_settings jsonb;
  v_flags jsonb;
  v_attempt integer;
  v_breaker text;
  v_engine boolean;
  v_shadow boolean;
  v_plan record;
  v_plans jsonb := '[]'::jsonb;
  v_tried integer := 0;
  v_conflicts integer := 0;
  v_hold jsonb;
  v_lock_wait numeric;
  v_legacy bigint[];
  v_restaurant_id bigint;
  v_error text;
  v_sqlstate text;
  v_cutoff timestamptz;
  v_timezone text;
begin
  if p_worker is null or pg_catalog.btrim(p_worker) = '' then
    perform allocator.raise_error('invalid_argument', 'worker name is required');
  end if;
  v_actor := 'worker:' || p_worker;
  if p_booking_id is null then
    perform allocator.raise_error('invalid_argument', 'booking id is required');
  end if;
  select b.restaurant_id into v_restaurant_id from allocator.bookings b where b.id = p_booking_id;
  if v_restaurant_id is null or not allocator.tenant_allows(v_restaurant_id) then
    return allocator.outcome('noop', 'not_found', 0, null, null, null, p_booking_id);
  end if;

  -- One worker per booking: a transaction-scoped advisory lock, never waited for.
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('allocator.booking'),
       (p_booking_id % 2147483647)::integer) then
    return allocator.outcome('noop', 'lock_contention', 0, null, null, null, p_booking_id);
  end if;
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_restaurant_id and b.id = p_booking_id for update;
  v_lock_wait := pg_catalog.round((extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000)::numeric, 3);
  if allocator.is_settled(v_booking.state) or v_booking.state = 'assigned' then
    -- Terminal, waiting for a person, or holding tables: nothing for the engine to do.
    perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
    return allocator.outcome('noop', 'state_' || v_booking.state, v_booking.assignment_attempts, null, null, null, p_booking_id);
  end if;
  if exists (select 1 from allocator.assignment_queue q
              where q.restaurant_id = v_booking.restaurant_id and q.booking_id = v_booking.id
                and q.run_at > allocator.now()) then
    return allocator.outcome('noop', 'not_due', v_booking.assignment_attempts, null, null, null, p_booking_id);
  end if;

  select r.settings, r.timezone into v_settings, v_timezone from allocator.restaurants r where r.id = v_booking.restaurant_id;
  v_flags := v_settings -> 'flags';
  v_engine := (v_flags ->> 'pipeline_enabled')::boolean and not (v_flags ->> 'kill_switch')::boolean
              and allocator.in_rollout(v_booking.restaurant_id, (v_flags ->> 'rollout_percent')::integer);
  v_shadow := v_engine and (v_flags ->> 'shadow')::boolean;

  if v_shadow then
    -- Shadow: record what the engine would decide beside the legacy planner's choice; only
    -- the legacy decision is applied.
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table_ids', c.table_ids,
             'score', c.score, 'strategy', c.strategy)), '[]'::jsonb)
      into v_plans
      from (select * from allocator.candidates(v_booking) limit 5) c;
    v_legacy := allocator.legacy_first_fit(v_booking);
    perform allocator.record_attempt(v_booking, v_booking.assignment_attempts + 1, p_worker,
      v_plans -> 0 ->> 'strategy',
      (select pg_catalog.array_agg(x::bigint) from pg_catalog.jsonb_array_elements_text(v_plans -> 0 -> 'table_ids') x),
      (v_plans -> 0 ->> 'score')::numeric, 'shadow', 'engine decision recorded, not applied', v_started,
      pg_catalog.jsonb_build_object('engine_plans', v_plans, 'legacy_table_ids', v_legacy, 'lock_wait_ms', v_lock_wait));
    -- The legacy planner decides and its decision is applied.
    v_engine := false;
  end if;

  v_breaker := allocator.breaker_allow(v_booking.restaurant_id);
  if v_breaker = 'open' then
    perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'circuit_open',
      allocator.now() + pg_catalog.make_interval(secs => (v_settings #>> '{breaker,cooldown_seconds}')::integer),
      v_booking.assignment_attempts);
    return allocator.outcome('retry', 'circuit_open', v_booking.assignment_attempts,
      (v_settings #>> '{breaker,cooldown_seconds}')::integer * 1000, null, null, p_booking_id);
  end if;
  if allocator.take_permit(v_booking.restaurant_id, (v_flags ->> 'max_parallel')::integer) is null then
    perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'rate_limited',
      allocator.now() + interval '200 milliseconds', v_booking.assignment_attempts);
    return allocator.outcome('retry', 'rate_limited', v_booking.assignment_attempts, 200, null, null, p_booking_id);
  end if;

  -- Walk the lifecycle up to assignment_in_progress.
  if v_booking.state = 'created' then
    if not allocator.party_fits_layout(v_booking.restaurant_id, v_booking.party_size) then
      perform allocator.record_attempt(v_booking, v_booking.assignment_attempts + 1, p_worker, null, null, null,
        'manual_review', 'no_table_fits_party', v_started, pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
      v_booking := allocator.transition(v_booking.id, v_booking.version, 'manual_review', v_actor,
        pg_catalog.format('no table or combination seats a party of %s', v_booking.party_size));
      perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
      return allocator.outcome('manual_review', 'no_table_fits_party', v_booking.assignment_attempts + 1, null, null, null, p_booking_id);
    end if;
    v_booking := allocator.transition(v_booking.id, v_booking.version, 'capacity_verified', v_actor, 'party fits the layout');
  end if;
  if v_booking.state = 'capacity_verified' then
    v_booking := allocator.transition(v_booking.id, v_booking.version, 'assignment_pending', v_actor, 'queued');
  end if;
  -- Pooled assignment: until its day's cut-off, the booking waits in assignment_pending for
  -- the nightly optimizer, which seats the day's pool at once. Still waiting fallback_minutes
  -- after the cut-off, it is due again and assigned here like any other booking.
  if v_engine and v_booking.state = 'assignment_pending' then
    v_cutoff := allocator.pool_cutoff(v_timezone, v_settings, pg_catalog.lower(v_booking.period));
    if allocator.now() < v_cutoff then
      v_cutoff := v_cutoff + pg_catalog.make_interval(mins => (v_settings #>> '{pooling,fallback_minutes}')::integer);
      perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'pooled', v_cutoff, v_booking.assignment_attempts);
      return allocator.outcome('deferred', 'pooled', v_booking.assignment_attempts,
        least(extract(epoch from v_cutoff - allocator.now()) * 1000, 2147483647)::integer, null, null, p_booking_id);
    end if;
  end if;
  if v_booking.state = 'assignment_pending' then
    v_booking := allocator.transition(v_booking.id, v_booking.version, 'assignment_in_progress', v_actor, 'assigning');
  end if;
  v_attempt := v_booking.assignment_attempts + 1;
  update allocator.bookings b set assignment_attempts = v_attempt
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  v_booking.assignment_attempts := v_attempt;

  -- An unexpected error while planning or holding is a failure the breaker counts; the
  -- booking is retried like any other failed attempt.
  begin
    for v_plan in
      select c.table_ids, c.score, c.strategy
        from allocator.candidates(v_booking) c
       where v_engine
      union all
      select l.ids, null::numeric, 'legacy_first_fit'
        from (select allocator.legacy_first_fit(v_booking) as ids) l
       where not v_engine and l.ids is not null
      limit 5
    loop
      v_tried := v_tried + 1;
      begin
        v_hold := allocator.hold_tables(v_booking.id, v_plan.table_ids, null, null, v_actor, v_booking.version);
      exception when sqlstate 'RA003' then
        v_conflicts := v_conflicts + 1;
        perform allocator.record_attempt(v_booking, v_attempt, p_worker, v_plan.strategy, v_plan.table_ids,
          v_plan.score, 'conflict', 'table taken meanwhile', v_started,
          pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
        continue;
      end;
      perform allocator.confirm_hold((v_hold ->> 'hold_id')::bigint, v_actor);
      update allocator.bookings b set assignment_strategy = v_plan.strategy
       where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
      perform allocator.record_attempt(v_booking, v_attempt, p_worker, v_plan.strategy, v_plan.table_ids,
        v_plan.score, 'confirmed', null, v_started,
        pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait, 'plans_tried', v_tried, 'breaker', v_breaker));
      perform allocator.breaker_record(v_booking.restaurant_id, true);
      return allocator.outcome('confirmed', null, v_attempt, null, v_plan.strategy, v_plan.table_ids, p_booking_id);
    end loop;
  exception when others then
    get stacked diagnostics v_error = message_text, v_sqlstate = returned_sqlstate;
    perform allocator.record_attempt(v_booking, v_attempt, p_worker, null, null, null, 'error',
      v_sqlstate || ': ' || v_error, v_started, pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
    perform allocator.breaker_record(v_booking.restaurant_id, false);
    select b.* into v_booking from allocator.bookings b
     where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
    return allocator.retry_or_review(v_booking, v_settings, v_attempt, 'error', v_actor);
  end;

  -- Nothing could be held.
  if v_tried = 0 then
    perform allocator.record_attempt(v_booking, v_attempt, p_worker, null, null, null, 'no_candidates',
      'no_free_table', v_started, pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
  else
    -- Every plan lost a race: contention, which the breaker counts.
    perform allocator.breaker_record(v_booking.restaurant_id, false);
  end if;
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_booking.restaurant_id and b.id = v_booking.id;
  return allocator.retry_or_review(v_booking, v_settings, v_attempt,
    case when v_tried = 0 then 'no_free_table' else 'all_plans_conflicted' end, v_actor);
end
$$;

comment on function allocator.process_booking(bigint, text) is
  'Assign a booking: lock it, check breaker and permits, walk created -> confirmed trying the top 5 plans, or schedule a retry with backoff, or send it to manual_review; in a pooling restaurant, before its day''s cut-off, leave it waiting for the nightly optimizer (outcome deferred). Idempotent: a booking with nothing to do is a noop with a reason';


