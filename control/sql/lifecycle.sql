-- Sets of booking states, read from the lifecycle tables so that no function lists states of
-- its own. (No index names bookings.state, so a change of state is a heap-only update; the
-- bookings in manual review are found through bookings_review_idx, on their reason.)
-- is_terminal and is_final are plpgsql, which keeps the plan of their look-up for the session:
-- a SQL function that is not inlined plans its query again in every transaction, and
-- process_booking asks once per booking. A query over many bookings tests the state against
-- the few rows of booking_states rather than calling them once per booking:
--   b.state in (select s.state from allocator.booking_states s where allocator.is_final(s.state))
create or replace function allocator.is_terminal(p_state text) returns boolean
language plpgsql
stable
strict
parallel safe
as $$
begin
  return (select s.terminal from allocator.booking_states s where s.state = p_state);
end
$$;

comment on function allocator.is_terminal(text) is
  'Whether the booking state is terminal (booking_states.terminal: confirmed, failed, cancelled); NULL for an unknown state';

-- Settled: the pipeline owes the booking nothing more. manual_review is not terminal (staff
-- may still requeue, confirm or decline it) but automation has handed it to a person.
-- A plain SQL expression, so it is inlined where it is called.
create or replace function allocator.is_settled(p_state text) returns boolean
language sql
stable
parallel safe
as $$
  select allocator.is_terminal(p_state) or p_state = 'manual_review'
$$;

comment on function allocator.is_settled(text) is
  'Whether automation is done with a booking in this state: a terminal state, or manual_review (a person decides); the others are waiting for the engine or for a hold to be confirmed';

-- Final: no transition leaves the state (booking_transitions), so the booking will never hold
-- a table again. confirmed is terminal but not final: it can be moved, modified or cancelled.
create or replace function allocator.is_final(p_state text) returns boolean
language plpgsql
stable
strict
parallel safe
as $$
begin
  return (select not exists (select 1 from allocator.booking_transitions t where t.from_state = s.state)
            from allocator.booking_states s where s.state = p_state);
end
$$;

comment on function allocator.is_final(text) is
  'Whether no transition leaves the booking state (booking_transitions): failed and cancelled; a booking in any other state may still be seated or moved. NULL for an unknown state';

-- Actors are "role" or "role:identity"; the role says what kind of caller acted.
create or replace function allocator.actor_role(p_actor text) returns text
language plpgsql
immutable
as $$
declare
  v_role text := pg_catalog.split_part(p_actor, ':', 1);
begin
  if p_actor is null or pg_catalog.btrim(p_actor) = '' then
    perform allocator.raise_error('invalid_argument', 'actor must not be empty', null,
      'use role or role:identity, with role one of app, worker, staff, optimizer, system');
  end if;
  perform allocator.check_length('actor', p_actor, 'actor_chars');
  if v_role not in ('app', 'worker', 'staff', 'optimizer', 'system') then
    perform allocator.raise_error('invalid_argument',
      pg_catalog.format('unknown actor role %s', v_role),
      pg_catalog.format('actor %s', p_actor),
      'use role or role:identity, with role one of app, worker, staff, optimizer, system');
  end if;
  return v_role;
end
$$;

comment on function allocator.actor_role(text) is
  'The role part of an actor (app, worker, staff, optimizer, system); raises invalid_argument otherwise';

-- Whether an event gives a worker new work, and so NOTIFYs: a booking created on the queue or
-- modified, or put back on the queue by anyone but a worker (a worker's own retries are due
-- at a time it knows).
create or replace function allocator.event_wakes_workers(p_topic text, p_payload jsonb) returns boolean
language sql
immutable
as $$
  select (p_topic = 'booking.created' and coalesce((p_payload ->> 'queued')::boolean, true))
      or p_topic = 'booking.modified'
      or (p_topic = 'booking.assignment_pending'
          and coalesce(p_payload ->> 'actor', '') not like 'worker:%')
$$;

comment on function allocator.event_wakes_workers(text, jsonb) is
  'Whether an event NOTIFYs allocator_events: booking.created when the booking was queued (not one book confirmed at once), booking.modified, and booking.assignment_pending by anyone but a worker';

-- The event topic of a state change: booking.<to state>; a change that keeps the state is
-- not a new state for guests to hear of: a confirmed booking moved to other tables is
-- booking.tables_changed (internal: guests are not told), any other booking.modified.
create or replace function allocator.state_topic(p_from text, p_to text) returns text
language sql
immutable
parallel safe
as $$
  select case when p_from is distinct from p_to then 'booking.' || p_to
              when p_to = 'confirmed' then 'booking.tables_changed'
              else 'booking.modified' end
$$;

comment on function allocator.state_topic(text, text) is
  'Event topic of a state change: booking.<to>, or booking.tables_changed (confirmed to confirmed: a move, never a second confirmation) or booking.modified (any other change that keeps the state)';

create or replace function allocator.emit_event(
  p_restaurant_id bigint,
  p_topic text,
  p_booking_id bigint,
  p_payload jsonb default '{}'::jsonb
) returns bigint
language plpgsql
volatile
as $$
declare
  v_id bigint;
begin
  insert into allocator.events (restaurant_id, topic, booking_id, payload)
  values (p_restaurant_id, p_topic, p_booking_id, coalesce(p_payload, '{}'::jsonb))
  returning id into v_id;
  -- NOTIFY takes a cluster-wide lock held through the commit's flush, so notifying
  -- transactions commit one at a time. Only events that give a worker new work notify: a
  -- booking created, or put back on the queue by anyone but a worker. Subscribers of the
  -- other events (notifications, events tail) read them with read_events at their next poll.
  if allocator.event_wakes_workers(p_topic, p_payload) then
    perform pg_catalog.pg_notify('allocator_events', v_id::text);
  end if;
  return v_id;
end
$$;

comment on function allocator.emit_event(bigint, text, bigint, jsonb) is
  'Append an event to the outbox in the caller''s transaction; an event that gives a worker new work (event_wakes_workers) also NOTIFYs allocator_events with its id';

create or replace function allocator.record_state(
  p_restaurant_id bigint,
  p_booking_id bigint,
  p_from text,
  p_to text,
  p_version integer,
  p_actor text,
  p_reason text,
  p_metadata jsonb,
  p_queued boolean
) returns bigint
language plpgsql
volatile
as $$
begin
  insert into allocator.booking_state_history
         (restaurant_id, booking_id, from_state, to_state, version, actor, reason, metadata)
  values (p_restaurant_id, p_booking_id, p_from, p_to, p_version, p_actor, p_reason,
          coalesce(p_metadata, '{}'::jsonb));
  return allocator.emit_event(p_restaurant_id, allocator.state_topic(p_from, p_to), p_booking_id,
    pg_catalog.jsonb_build_object('booking_id', p_booking_id, 'from', p_from, 'to', p_to,
                                  'version', p_version, 'actor', p_actor, 'queued', p_queued));
end
$$;

comment on function allocator.record_state(bigint, bigint, text, text, integer, text, text, jsonb, boolean) is
  'Write the history row and the event of a booking''s first state, created (used by insert_booking); the event says whether the booking was queued';

create or replace function allocator.check_version(p_booking allocator.bookings, p_expected_version integer) returns void
language plpgsql
immutable
as $$
begin
  if p_expected_version is not null and p_booking.version <> p_expected_version then
    perform allocator.raise_error('stale_version',
      pg_catalog.format('booking %s is at version %s, not %s', p_booking.id, p_booking.version, p_expected_version),
      null, 'read the booking again and retry with its current version');
  end if;
end
$$;

comment on function allocator.check_version(allocator.bookings, integer) is
  'Raise stale_version (RA004) unless the booking is at the expected version (NULL: any version)';

create or replace function allocator.check_can_move(
  p_booking allocator.bookings,
  p_to_state text,
  p_refusal text,
  p_hint text default null
) returns void
language plpgsql
stable
as $$
begin
  if not exists (select 1 from allocator.booking_transitions t
                  where t.from_state = p_booking.state and t.to_state = p_to_state) then
    perform allocator.raise_error('invalid_transition',
      pg_catalog.format('booking %s is %s %s', p_booking.id, p_booking.state, p_refusal), null, p_hint);
  end if;
end
$$;

comment on function allocator.check_can_move(allocator.bookings, text, text, text) is
  'Raise invalid_transition (RA005), worded with p_refusal, unless the booking may move to p_to_state';

-- The only writer of bookings.state. The expected version and the allowed transitions are
-- guarded in the UPDATE's WHERE, so a concurrent change makes this one fail, never both win.
-- A path of several states (the engine walking created -> ... -> assignment_in_progress) is
-- one UPDATE, one INSERT of its history rows and one of its events: the same rows as one
-- transition after another, each state its own version, history row and event.
create or replace function allocator.transition_path(
  p_booking_id bigint,
  p_expected_version integer,
  p_states text[],
  p_actor text,
  p_reasons text[] default null,
  p_metadata jsonb[] default null,
  p_attempts integer default null,
  p_strategy text default null
) returns allocator.bookings
language plpgsql
volatile
as $$
declare
  v_role text := allocator.actor_role(p_actor);
  v_steps integer := pg_catalog.cardinality(p_states);
  v_old allocator.bookings;
  v_new allocator.bookings;
  v_from text;
  v_to text;
  v_notified integer;
begin
  if p_booking_id is null or p_expected_version is null or coalesce(v_steps, 0) = 0
     or pg_catalog.array_position(p_states, null) is not null then
    perform allocator.raise_error('invalid_argument', 'booking, expected version and target state are required');
  end if;
  select b.* into v_old from allocator.bookings b where b.id = p_booking_id;
  if not found then
    perform allocator.raise_error('not_found', pg_catalog.format('booking %s does not exist', p_booking_id));
  end if;

  update allocator.bookings b
     set state = p_states[v_steps],
         version = b.version + v_steps,
         updated_at = allocator.now(),
         manual_review_reason = case when p_states[v_steps] = 'manual_review'
                                     then coalesce(p_reasons[v_steps], 'sent to manual review') end,
         assignment_attempts = coalesce(p_attempts, b.assignment_attempts),
         assignment_strategy = coalesce(p_strategy, b.assignment_strategy)
   where b.restaurant_id = v_old.restaurant_id
     and b.id = p_booking_id
     and b.version = p_expected_version
     and v_steps = (select pg_catalog.count(*)
                      from rows from (pg_catalog.unnest(pg_catalog.array_prepend(b.state, p_states[1:v_steps - 1])), pg_catalog.unnest(p_states)) s(f, t)
                      join allocator.booking_transitions t on t.from_state = s.f and t.to_state = s.t
                     where not t.manual_only or v_role in ('staff', 'optimizer'))
  returning b.* into v_new;

  if not found then
    select b.* into v_old from allocator.bookings b
     where b.restaurant_id = v_old.restaurant_id and b.id = p_booking_id;
    perform allocator.check_version(v_old, p_expected_version);
    -- The first step that may not be taken.
    select s.f, s.t into v_from, v_to
      from rows from (pg_catalog.unnest(pg_catalog.array_prepend(v_old.state, p_states[1:v_steps - 1])), pg_catalog.unnest(p_states)) with ordinality s(f, t, n)
     where not exists (select 1 from allocator.booking_transitions t
                        where t.from_state = s.f and t.to_state = s.t
                          and (not t.manual_only or v_role in ('staff', 'optimizer')))
     order by s.n limit 1;
    if exists (select 1 from allocator.booking_transitions t
                where t.from_state = v_from and t.to_state = v_to) then
      perform allocator.raise_error('not_permitted',
        pg_catalog.format('only staff or the optimizer may move a booking from %s to %s', v_from, v_to),
        pg_catalog.format('actor %s', p_actor));
    end if;
    perform allocator.raise_error('invalid_transition',
      pg_catalog.format('booking %s cannot go from %s to %s', p_booking_id, v_from, v_to),
      null,
      (select 'allowed from ' || v_from || ': ' || coalesce(pg_catalog.string_agg(t.to_state, ', ' order by t.to_state), 'nothing')
         from allocator.booking_transitions t where t.from_state = v_from));
  end if;

  insert into allocator.booking_state_history
         (restaurant_id, booking_id, from_state, to_state, version, actor, reason, metadata)
  select v_new.restaurant_id, v_new.id, s.f, s.t, v_old.version + s.n::integer, p_actor,
         p_reasons[s.n], coalesce(p_metadata[s.n], '{}'::jsonb)
    from rows from (pg_catalog.unnest(pg_catalog.array_prepend(v_old.state, p_states[1:v_steps - 1])), pg_catalog.unnest(p_states)) with ordinality s(f, t, n);
  with e as (
    insert into allocator.events (restaurant_id, topic, booking_id, payload)
    select v_new.restaurant_id, allocator.state_topic(s.f, s.t), v_new.id,
           pg_catalog.jsonb_build_object('booking_id', v_new.id, 'from', s.f, 'to', s.t,
                                         'version', v_old.version + s.n::integer, 'actor', p_actor)
      from rows from (pg_catalog.unnest(pg_catalog.array_prepend(v_old.state, p_states[1:v_steps - 1])), pg_catalog.unnest(p_states)) with ordinality s(f, t, n)
     order by s.n
    returning id, topic, payload
  )
  select pg_catalog.count(pg_catalog.pg_notify('allocator_events', e.id::text)) into v_notified
    from e where allocator.event_wakes_workers(e.topic, e.payload);
  return v_new;
end
$$;

comment on function allocator.transition_path(bigint, integer, text[], text, text[], jsonb[], integer, text) is
  'Move a booking through p_states in order if every step is allowed and it is at p_expected_version: one version, history row and event per state (p_reasons, p_metadata per step), written together, with the engine''s attempt count and strategy when given; with transition, the only writer of bookings.state';

create or replace function allocator.transition(
  p_booking_id bigint,
  p_expected_version integer,
  p_to_state text,
  p_actor text,
  p_reason text default null,
  p_metadata jsonb default '{}'::jsonb
) returns allocator.bookings
language sql
volatile
as $$
  select allocator.transition_path(p_booking_id, p_expected_version, array[p_to_state], p_actor,
    array[p_reason], array[p_metadata])
$$;

comment on function allocator.transition(bigint, integer, text, text, text, jsonb) is
  'Move a booking to p_to_state if allowed and at p_expected_version: bumps the version, writes history and an event, NOTIFYs a worker when it gives one work; the only writer of bookings.state (through transition_path)';

create or replace function allocator.enqueue(
  p_restaurant_id bigint,
  p_booking_id bigint,
  p_reason text,
  p_run_at timestamptz default null,
  p_attempt integer default 0
) returns void
language plpgsql
volatile
as $$
begin
  -- PL/pgSQL: the statement's plan is kept for the session (an SQL function's is made
  -- again in every transaction).
  insert into allocator.assignment_queue (restaurant_id, booking_id, run_at, attempt, reason)
  values (p_restaurant_id, p_booking_id, coalesce(p_run_at, allocator.now()), p_attempt, p_reason)
  on conflict (restaurant_id, booking_id) do update
     set run_at = excluded.run_at, attempt = excluded.attempt, reason = excluded.reason,
         enqueued_at = allocator.now(), deferrals = 0;
end
$$;

comment on function allocator.enqueue(bigint, bigint, text, timestamptz, integer) is
  'Put a booking on the assignment queue (or move its row, which resets its count of deferrals) to run at p_run_at, default now';

create or replace function allocator.dequeue(p_restaurant_id bigint, p_booking_id bigint) returns void
language plpgsql
volatile
as $$
begin
  -- PL/pgSQL: the statement's plan is kept for the session (an SQL function's is made
  -- again in every transaction).
  delete from allocator.assignment_queue q
   where q.restaurant_id = p_restaurant_id and q.booking_id = p_booking_id;
end
$$;

comment on function allocator.dequeue(bigint, bigint) is 'Take a booking off the assignment queue';


