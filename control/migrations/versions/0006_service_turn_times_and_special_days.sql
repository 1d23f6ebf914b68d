-- Revision 0006: turn times per service, and special days. A service may have its own turn
-- times by party size (the restaurant's turn_minutes setting stays the default), and on a
-- given date a service may run other hours than its weekly pattern, or not at all, whatever
-- its weekdays say. A closed day (service_closures) still closes every service.
alter table allocator.services
  add column turn_minutes jsonb constraint services_turn_minutes_check
    check (turn_minutes is null or (pg_catalog.jsonb_typeof(turn_minutes) = 'object' and turn_minutes <> '{}'::jsonb));
comment on column allocator.services.turn_minutes is
  'Turn times of this service by party size ({"2": 90, "4": 120}); NULL: the restaurant''s turn_minutes setting';

create table allocator.special_days (
  restaurant_id bigint not null,
  day date not null,
  service_id bigint not null,
  opens time,
  last_seating time,
  reason text not null constraint special_days_reason_check check (pg_catalog.length(reason) between 1 and 2000),
  created_at timestamptz not null default allocator.now(),
  primary key (restaurant_id, day, service_id),
  foreign key (restaurant_id, service_id) references allocator.services (restaurant_id, id) on delete cascade,
  constraint special_days_hours_check check ((opens is null) = (last_seating is null) and opens <= last_seating)
);
comment on table allocator.special_days is
  'A service''s hours on one date (local), whatever its weekdays: opening and last seating, or both NULL when it does not run that day';

create index special_days_service_idx on allocator.special_days (restaurant_id, service_id);

alter table allocator.special_days enable row level security;

-- set_service gains the turn times: a new signature.
drop function if exists allocator.set_service(bigint, text, integer[], time, time, integer, integer);

-- record_state says in its event whether the new booking was queued: a new signature.
drop function if exists allocator.record_state(bigint, bigint, text, text, integer, text, text, jsonb);
