-- Restaurant settings and time zones are validated; defaults fill what is not given.
select plan(22);

insert into allocator.restaurants (name, timezone) values ('Settings A', 'America/New_York');

select is((select settings from allocator.restaurants where name = 'Settings A'),
  allocator.default_settings(), 'a restaurant without settings gets the defaults');

insert into allocator.restaurants (name, timezone, settings)
values ('Settings B', 'Asia/Tokyo', '{"buffer_minutes": 5, "retry": {"max_attempts": 3}}');
select is((select settings #>> '{retry,max_attempts}' from allocator.restaurants where name = 'Settings B'),
  '3', 'a nested setting overrides its default');
select is((select settings #>> '{retry,base_delay_ms}' from allocator.restaurants where name = 'Settings B'),
  '500', 'the other keys of a nested group keep their defaults');

select throws_ok($$ insert into allocator.restaurants (name, timezone) values ('X', 'Mars/Olympus') $$,
  'RA006', 'unknown time zone Mars/Olympus', 'an unknown time zone is rejected');
select throws_ok($$ insert into allocator.restaurants (name, timezone) values ('X', NULL) $$,
  'RA006', NULL, 'a NULL time zone is rejected');
select throws_ok($$ insert into allocator.restaurants (name, timezone) values ('  ', 'UTC') $$,
  'RA001', NULL, 'an empty name is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"turn_minutes": {"2": -90}}') $$,
  'RA006', 'setting turn_minutes.2 must be an integer from 15 to 720', 'a negative turn time is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"turn_minutes": {}}') $$,
  'RA006', NULL, 'an empty turn time table is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"turn_minutes": {"two": 90}}') $$,
  'RA006', NULL, 'a turn time keyed by something other than a party size is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"bufer_minutes": 5}') $$,
  'RA006', 'unknown setting bufer_minutes', 'a misspelt setting is rejected, not ignored');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"flags": {"rollout_percent": 101}}') $$,
  'RA006', NULL, 'a rollout above 100 percent is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"flags": {"shadow": "yes"}}') $$,
  'RA006', NULL, 'a flag must be a boolean');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"retry": {"jitter": 1.5}}') $$,
  'RA006', NULL, 'jitter above 1 is rejected');
select is((select settings #>> '{retry,max_deferrals}' from allocator.restaurants where name = 'Settings B'),
  '100', 'retry.max_deferrals defaults to 100');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"retry": {"max_deferrals": 0}}') $$,
  'RA006', 'setting retry.max_deferrals must be an integer from 1 to 10000', 'retry.max_deferrals of 0 is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"retry": {"max_deferrals": "5"}}') $$,
  'RA006', NULL, 'retry.max_deferrals must be a JSON integer');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '{"hold_ttl_seconds": 2.5}') $$,
  'RA006', NULL, 'a fractional integer setting is rejected');
select throws_ok($$ insert into allocator.restaurants (name, settings) values ('X', '[1, 2]') $$,
  'RA006', NULL, 'settings must be an object');
select throws_ok($$ update allocator.restaurants set settings = settings || '{"max_combination_size": 0}' where name = 'Settings A' $$,
  'RA006', NULL, 'an update is validated too');
select is((select settings ->> 'max_combination_size' from allocator.restaurants where name = 'Settings A'),
  '3', 'a rejected update changes nothing');

select is(
  array[allocator.turn_minutes(allocator.default_settings(), 1),
        allocator.turn_minutes(allocator.default_settings(), 3),
        allocator.turn_minutes(allocator.default_settings(), 8),
        allocator.turn_minutes(allocator.default_settings(), 12)],
  array[90, 120, 180, 180],
  'the turn time is the smallest entry that fits the party, else the largest');
select ok(allocator.is_valid_timezone('Europe/Paris') and not allocator.is_valid_timezone('Europe/Atlantis'),
  'IANA names are recognised');

select * from finish();
