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
-- the failure_threshold-th in a row, opens it. Returns the new state. An outcome recorded
-- while another session holds the breaker's row is not counted (never waited for).
create or replace function allocator.breaker_record(p_restaurant_id bigint, p_success boolean) returns text
language plpgsql
volatile
as $$
declare
  v_threshold integer;
  v_breaker allocator.circuit_breakers;
begin
  -- A success on a closed breaker with no failures changes nothing: no write, and no wait
  -- for the other sessions of the restaurant that hold its row until they commit.
  if p_success then
    select b.* into v_breaker from allocator.circuit_breakers b where b.restaurant_id = p_restaurant_id;
    if not found or (v_breaker.state = 'closed' and v_breaker.failures = 0) then
      return 'closed';
    end if;
  end if;
  select (r.settings #>> '{breaker,failure_threshold}')::integer into v_threshold
    from allocator.restaurants r where r.id = p_restaurant_id;
  insert into allocator.circuit_breakers as b (restaurant_id) values (p_restaurant_id)
  on conflict (restaurant_id) do nothing;
  -- Never queue on the restaurant's breaker row: when another session is recording an outcome
  -- at this moment, this one is not counted (outcomes of one instant count once), so a burst of
  -- conflicts does not make every session of the restaurant wait for the others' commits.
  select b.* into v_breaker from allocator.circuit_breakers b
   where b.restaurant_id = p_restaurant_id for update skip locked;
  if not found then
    select b.* into v_breaker from allocator.circuit_breakers b where b.restaurant_id = p_restaurant_id;
    return v_breaker.state;
  end if;
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
  'Record a success (closes the breaker) or a failure (opens it in half_open or at failure_threshold) and return the new state; an outcome recorded while another session holds the breaker''s row is not counted';

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

-- A per-restaurant concurrency permit: one of the restaurant's slot rows 1 to max_parallel
-- in allocator.permits, locked FOR UPDATE SKIP LOCKED until the transaction ends, so a crash
-- leaks nothing, nobody waits, and a transaction that holds a permit gets the same one again.
-- Locking a row needs UPDATE on its table, which no role has: only the schema's functions
-- can hold a permit. A slot row that does not exist yet (a new restaurant, a raised
-- max_parallel) is created by the first transaction that needs it, and held by it.
create or replace function allocator.take_permit(p_restaurant_id bigint, p_max_parallel integer) returns integer
language plpgsql
volatile
as $$
declare
  v_slot integer;
  v_lock_timeout text;
  v_created boolean := false;
begin
  select p.slot into v_slot from allocator.permits p
   where p.restaurant_id = p_restaurant_id and p.slot <= p_max_parallel
   order by p.slot
   limit 1
   for update skip locked;
  if found then
    return v_slot;
  end if;
  -- Create the first missing slot. Another session creating the same slot at this moment
  -- would make the insert wait for its transaction: after 10 ms, try the next one instead.
  v_lock_timeout := pg_catalog.current_setting('lock_timeout');
  perform pg_catalog.set_config('lock_timeout', '10ms', true);
  for v_slot in
    select s.slot from pg_catalog.generate_series(1, p_max_parallel) as s (slot)
     where not exists (select 1 from allocator.permits p
                        where p.restaurant_id = p_restaurant_id and p.slot = s.slot)
     order by s.slot
  loop
    begin
      insert into allocator.permits (restaurant_id, slot) values (p_restaurant_id, v_slot)
      on conflict (restaurant_id, slot) do nothing;
      v_created := found;
    exception when lock_not_available then
      v_created := false;
    end;
    exit when v_created;
  end loop;
  perform pg_catalog.set_config('lock_timeout', v_lock_timeout, true);
  if v_created then
    return v_slot;
  end if;
  -- Slots created and released by other sessions meanwhile.
  select p.slot into v_slot from allocator.permits p
   where p.restaurant_id = p_restaurant_id and p.slot <= p_max_parallel
   order by p.slot
   limit 1
   for update skip locked;
  return v_slot;
end
$$;

comment on function allocator.take_permit(bigint, integer) is
  'Take one of the restaurant''s max_parallel assignment permits for this transaction (a row of allocator.permits, locked FOR UPDATE SKIP LOCKED, or created if missing); the slot number from 1, or NULL if all are taken';

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
language plpgsql
volatile
as $$
begin
  -- PL/pgSQL: the statement's plan is kept for the session (an SQL function's is made
  -- again in every transaction).
  insert into allocator.booking_assignment_attempts
         (restaurant_id, booking_id, attempt, worker, strategy, table_ids, score, result, reason, duration_ms, metadata)
  values (p_booking.restaurant_id, p_booking.id, p_attempt, p_worker, p_strategy, p_table_ids, p_score, p_result,
          p_reason, pg_catalog.round((extract(epoch from pg_catalog.clock_timestamp() - p_started) * 1000)::numeric, 3),
          coalesce(p_metadata, '{}'::jsonb)
            || pg_catalog.jsonb_build_object('started_at', p_started, 'finished_at', pg_catalog.clock_timestamp(),
                                             'backend_pid', pg_catalog.pg_backend_pid()));
end
$$;

comment on function allocator.record_attempt(allocator.bookings, integer, text, text, bigint[], numeric, text, text, timestamptz, jsonb) is
  'Write one booking_assignment_attempts row (duration measured from p_started)';

-- The outcome of one assignment attempt as an event, with the payload the source documents
-- specify: succeeded (seated), failed (tried and not seated, or no table fits the party) or
-- aborted (not tried: the breaker open, no permit, the booking's row held elsewhere).
create or replace function allocator.assignment_event(
  p_booking allocator.bookings,
  p_outcome text,
  p_attempt integer,
  p_strategy text,
  p_reason text
) returns bigint
language sql
volatile
as $$
  select allocator.emit_event(p_booking.restaurant_id, 'booking.assignment_' || p_outcome, p_booking.id,
    pg_catalog.jsonb_build_object('booking_id', p_booking.id, 'partySize', p_booking.party_size,
      'timeslot', pg_catalog.jsonb_build_object('start', pg_catalog.lower(p_booking.period),
                                                'end', pg_catalog.upper(p_booking.period)),
      'attempt', p_attempt, 'strategy', p_strategy, 'reason', p_reason))
$$;

comment on function allocator.assignment_event(allocator.bookings, text, integer, text, text) is
  'Emit booking.assignment_succeeded, _failed or _aborted with {booking_id, partySize, timeslot {start, end}, attempt, strategy, reason}';

create or replace function allocator.outcome(
  p_outcome text, p_reason text, p_attempt integer, p_delay_ms integer default null,
  p_strategy text default null, p_table_ids bigint[] default null, p_booking_id bigint default null
) returns jsonb
language plpgsql
immutable
as $$
begin
  return pg_catalog.jsonb_build_object('outcome', p_outcome, 'reason', p_reason, 'delay_ms', p_delay_ms,
    'attempt', p_attempt, 'strategy', p_strategy, 'tables', pg_catalog.to_jsonb(p_table_ids), 'booking_id', p_booking_id);
end
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
  perform allocator.assignment_event(p_booking, 'failed', p_attempt, null, p_reason);
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

-- A booking put back retry.max_deferrals times in a row without being worked on goes to a
-- person, with the reason of the last time.
create or replace function allocator.review_deferred(
  p_booking allocator.bookings,
  p_reason text,
  p_deferrals integer,
  p_actor text
) returns jsonb
language plpgsql
volatile
as $$
begin
  perform allocator.assignment_event(p_booking, 'aborted', p_booking.assignment_attempts, null, p_reason);
  perform allocator.transition(p_booking.id, p_booking.version, 'manual_review', p_actor,
    pg_catalog.format('%s after %s deferrals', p_reason, p_deferrals),
    pg_catalog.jsonb_build_object('deferrals', p_deferrals));
  perform allocator.dequeue(p_booking.restaurant_id, p_booking.id);
  return allocator.outcome('manual_review', p_reason, p_booking.assignment_attempts, null, null, null, p_booking.id);
end
$$;

comment on function allocator.review_deferred(allocator.bookings, text, integer, text) is
  'Send a booking that was put back retry.max_deferrals times in a row without an attempt to manual_review (reason "<reason> after <n> deferrals") and take it off the queue';

-- Puts a booking the engine did not work on (circuit_open, rate_limited) back on the queue
-- after p_delay_ms and counts it on its queue row; the retry.max_deferrals-th time in a row
-- it goes to manual review instead. Nothing else about the booking changes.
create or replace function allocator.defer_or_review(
  p_booking allocator.bookings,
  p_max_deferrals integer,
  p_reason text,
  p_delay_ms integer,
  p_actor text
) returns jsonb
language plpgsql
volatile
as $$
declare
  v_deferrals integer;
begin
  insert into allocator.assignment_queue as q (restaurant_id, booking_id, run_at, attempt, reason, deferrals)
  values (p_booking.restaurant_id, p_booking.id,
          allocator.now() + pg_catalog.make_interval(secs => p_delay_ms / 1000.0),
          p_booking.assignment_attempts, p_reason, 1)
  on conflict (restaurant_id, booking_id) do update
     set run_at = excluded.run_at, attempt = excluded.attempt, reason = excluded.reason,
         enqueued_at = allocator.now(), deferrals = q.deferrals + 1
  returning q.deferrals into v_deferrals;
  if v_deferrals >= p_max_deferrals then
    return allocator.review_deferred(p_booking, p_reason, v_deferrals, p_actor);
  end if;
  perform allocator.assignment_event(p_booking, 'aborted', p_booking.assignment_attempts, null, p_reason);
  return allocator.outcome('retry', p_reason, p_booking.assignment_attempts, p_delay_ms, null, null, p_booking.id);
end
$$;

comment on function allocator.defer_or_review(allocator.bookings, integer, text, integer, text) is
  'Put a booking the engine did not work on back on the queue after p_delay_ms, counting the deferral on its queue row; the p_max_deferrals-th time in a row (the retry.max_deferrals setting), send it to manual_review instead';

-- An attempt that seated nobody, written before its retry or review: the booking's path up to
-- assignment_in_progress (p_path, reasons p_reasons) and its attempt count; the booking as it
-- is now.
create or replace function allocator.start_attempt(
  p_booking allocator.bookings,
  p_path text[],
  p_reasons text[],
  p_actor text,
  p_attempt integer
) returns allocator.bookings
language plpgsql
volatile
as $$
declare
  v_booking allocator.bookings;
begin
  if p_path <> '{}' then
    return allocator.transition_path(p_booking.id, p_booking.version, p_path, p_actor, p_reasons, null, p_attempt);
  end if;
  update allocator.bookings b set assignment_attempts = p_attempt
   where b.restaurant_id = p_booking.restaurant_id and b.id = p_booking.id
  returning b.* into v_booking;
  return v_booking;
end
$$;

comment on function allocator.start_attempt(allocator.bookings, text[], text[], text, integer) is
  'Write an attempt that seated nobody: the booking''s path up to assignment_in_progress and its attempt count; returns the booking';

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
  v_lock_wait numeric;
  v_legacy bigint[];
  v_restaurant_id bigint;
  v_error text;
  v_sqlstate text;
  v_cutoff timestamptz;
  v_timezone text;
  v_run_at timestamptz;
  v_deferrals integer;
  v_queue_reason text;
  v_max_deferrals integer;
  v_path text[] := '{}';
  v_reasons text[] := '{}';
  v_waiting boolean;
begin
  if p_worker is null or pg_catalog.btrim(p_worker) = '' then
    perform allocator.raise_error('invalid_argument', 'worker name is required');
  end if;
  perform allocator.check_length('worker name', p_worker);
  v_actor := 'worker:' || p_worker;
  if p_booking_id is null then
    perform allocator.raise_error('invalid_argument', 'booking id is required');
  end if;
  select b.restaurant_id into v_restaurant_id from allocator.bookings b where b.id = p_booking_id;
  if v_restaurant_id is null or not allocator.tenant_allows(v_restaurant_id) then
    return allocator.outcome('noop', 'not_found', 0, null, null, null, p_booking_id);
  end if;

  -- One session per booking: the booking's row lock, never waited for. Only the schema's
  -- functions can lock the row: SELECT ... FOR UPDATE needs UPDATE on bookings.
  select b.* into v_booking from allocator.bookings b
   where b.restaurant_id = v_restaurant_id and b.id = p_booking_id for update skip locked;
  if not found then
    -- Another session holds the booking's row (another process_booking, a modification, a
    -- hold or a staff action in an open transaction): never wait for it. Its queue row is due
    -- again in a second, no longer leased, and counts the deferral (retry.max_deferrals in a
    -- row send the booking to manual review once its row is free), unless that row is locked
    -- too (its holder is moving it), or this transaction has written already (run_one
    -- claimed the row in it): an update would then check the row's foreign key again, which
    -- locks the booking row and would wait. Such a row keeps its lease and is claimed again
    -- when the lease runs out.
    if pg_catalog.pg_current_xact_id_if_assigned() is null then
      update allocator.assignment_queue q
         set run_at = allocator.now() + interval '1 second', reason = 'row_locked',
             deferrals = q.deferrals + 1
        from (select l.restaurant_id, l.booking_id from allocator.assignment_queue l
               where l.restaurant_id = v_restaurant_id and l.booking_id = p_booking_id
                 for update skip locked) l
       where q.restaurant_id = l.restaurant_id and q.booking_id = l.booking_id;
      if found then
        -- The booking as last committed: its row is another session's.
        select b.* into v_booking from allocator.bookings b
         where b.restaurant_id = v_restaurant_id and b.id = p_booking_id;
        perform allocator.assignment_event(v_booking, 'aborted', v_booking.assignment_attempts, null, 'row_locked');
        return allocator.outcome('retry', 'row_locked', 0, 1000, null, null, p_booking_id);
      end if;
    end if;
    return allocator.outcome('noop', 'row_locked', 0, null, null, null, p_booking_id);
  end if;
  v_lock_wait := pg_catalog.round((extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000)::numeric, 3);
  if allocator.is_settled(v_booking.state) or v_booking.state = 'assigned' then
    -- Terminal, waiting for a person, or holding tables: nothing for the engine to do.
    perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
    return allocator.outcome('noop', 'state_' || v_booking.state, v_booking.assignment_attempts, null, null, null, p_booking_id);
  end if;
  select q.run_at, q.deferrals, q.reason into v_run_at, v_deferrals, v_queue_reason
    from allocator.assignment_queue q
   where q.restaurant_id = v_booking.restaurant_id and q.booking_id = v_booking.id;
  if v_run_at > allocator.now() then
    return allocator.outcome('noop', 'not_due', v_booking.assignment_attempts, null, null, null, p_booking_id);
  end if;

  select r.settings, r.timezone into v_settings, v_timezone from allocator.restaurants r where r.id = v_booking.restaurant_id;
  -- Put back retry.max_deferrals times in a row without being worked on (the last time, say,
  -- because another session held its row): a person decides now. Settings stored before the
  -- setting existed lack it: the default applies.
  v_max_deferrals := coalesce((v_settings #>> '{retry,max_deferrals}')::integer,
                              (allocator.default_settings() #>> '{retry,max_deferrals}')::integer);
  if v_deferrals >= v_max_deferrals then
    return allocator.review_deferred(v_booking, v_queue_reason, v_deferrals, v_actor);
  end if;
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
  -- An open breaker, or every permit taken: back on the queue, counted (defer_or_review).
  if v_breaker = 'open' then
    return allocator.defer_or_review(v_booking, v_max_deferrals, 'circuit_open',
      (v_settings #>> '{breaker,cooldown_seconds}')::integer * 1000, v_actor);
  end if;
  if allocator.take_permit(v_booking.restaurant_id, (v_flags ->> 'max_parallel')::integer) is null then
    return allocator.defer_or_review(v_booking, v_max_deferrals, 'rate_limited', 200, v_actor);
  end if;

  -- Walk the lifecycle up to assignment_in_progress, the states written together.
  if v_booking.state = 'created' then
    if not allocator.party_fits_layout(v_booking.restaurant_id, v_booking.party_size) then
      perform allocator.record_attempt(v_booking, v_booking.assignment_attempts + 1, p_worker, null, null, null,
        'manual_review', 'no_table_fits_party', v_started, pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
      perform allocator.assignment_event(v_booking, 'failed', v_booking.assignment_attempts + 1, null,
        'no_table_fits_party');
      v_booking := allocator.transition(v_booking.id, v_booking.version, 'manual_review', v_actor,
        pg_catalog.format('no table or combination seats a party of %s', v_booking.party_size));
      perform allocator.dequeue(v_booking.restaurant_id, v_booking.id);
      return allocator.outcome('manual_review', 'no_table_fits_party', v_booking.assignment_attempts + 1, null, null, null, p_booking_id);
    end if;
    v_path := array['capacity_verified', 'assignment_pending'];
    v_reasons := array['party fits the layout', 'queued'];
  elsif v_booking.state = 'capacity_verified' then
    v_path := array['assignment_pending'];
    v_reasons := array['queued'];
  end if;
  -- Pooled assignment: until its day's cut-off, the booking waits in assignment_pending for
  -- the nightly optimizer, which seats the day's pool at once. Still waiting fallback_minutes
  -- after the cut-off, it is due again and assigned here like any other booking.
  v_waiting := v_path <> '{}' or v_booking.state = 'assignment_pending';
  if v_engine and v_waiting then
    v_cutoff := allocator.pool_cutoff(v_timezone, v_settings, pg_catalog.lower(v_booking.period));
    if allocator.now() < v_cutoff then
      if v_path <> '{}' then
        v_booking := allocator.transition_path(v_booking.id, v_booking.version, v_path, v_actor, v_reasons);
      end if;
      v_cutoff := v_cutoff + pg_catalog.make_interval(mins => (v_settings #>> '{pooling,fallback_minutes}')::integer);
      perform allocator.enqueue(v_booking.restaurant_id, v_booking.id, 'pooled', v_cutoff, v_booking.assignment_attempts);
      return allocator.outcome('deferred', 'pooled', v_booking.assignment_attempts,
        least(extract(epoch from v_cutoff - allocator.now()) * 1000, 2147483647)::integer, null, null, p_booking_id);
    end if;
  end if;
  if v_waiting then
    v_path := v_path || 'assignment_in_progress'::text;
    v_reasons := v_reasons || 'assigning'::text;
  end if;
  v_attempt := v_booking.assignment_attempts + 1;
  -- The path up to assignment_in_progress is written with the hold (assigned, confirmed), in
  -- one transition_path; when no plan can be held, on its own before the retry or review.
  -- Nobody sees the difference: the booking's row is this transaction's until it commits.

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
        -- Held and confirmed in one step, never waiting for tables another session writes.
        perform allocator.hold_booking_tables(v_booking, v_plan.table_ids, null, null, v_actor,
          v_booking.version, false, 'hold confirmed', '{}', v_plan.strategy, v_path, v_reasons, v_attempt);
      exception when sqlstate 'RA003' then
        v_conflicts := v_conflicts + 1;
        perform allocator.record_attempt(v_booking, v_attempt, p_worker, v_plan.strategy, v_plan.table_ids,
          v_plan.score, 'conflict', 'table taken meanwhile', v_started,
          pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
        continue;
      end;
      perform allocator.record_attempt(v_booking, v_attempt, p_worker, v_plan.strategy, v_plan.table_ids,
        v_plan.score, 'confirmed', null, v_started,
        pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait, 'plans_tried', v_tried, 'breaker', v_breaker));
      perform allocator.assignment_event(v_booking, 'succeeded', v_attempt, v_plan.strategy, null);
      perform allocator.breaker_record(v_booking.restaurant_id, true);
      return allocator.outcome('confirmed', null, v_attempt, null, v_plan.strategy, v_plan.table_ids, p_booking_id);
    end loop;
  exception when others then
    get stacked diagnostics v_error = message_text, v_sqlstate = returned_sqlstate;
    perform allocator.record_attempt(v_booking, v_attempt, p_worker, null, null, null, 'error',
      v_sqlstate || ': ' || v_error, v_started, pg_catalog.jsonb_build_object('lock_wait_ms', v_lock_wait));
    perform allocator.breaker_record(v_booking.restaurant_id, false);
    v_booking := allocator.start_attempt(v_booking, v_path, v_reasons, v_actor, v_attempt);
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
  v_booking := allocator.start_attempt(v_booking, v_path, v_reasons, v_actor, v_attempt);
  return allocator.retry_or_review(v_booking, v_settings, v_attempt,
    case when v_tried = 0 then 'no_free_table' else 'all_plans_conflicted' end, v_actor);
end
$$;

comment on function allocator.process_booking(bigint, text) is
  'Assign a booking: lock it, check breaker and permits, walk created -> confirmed trying the top 5 plans, or schedule a retry with backoff, or send it to manual_review (also after retry.max_deferrals calls in a row that could not work on it: row_locked, circuit_open, rate_limited); in a pooling restaurant, before its day''s cut-off, leave it waiting for the nightly optimizer (outcome deferred). Idempotent: a booking with nothing to do is a noop with a reason';


