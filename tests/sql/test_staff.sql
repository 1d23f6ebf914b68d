-- Staff accounts and the console's login: the console acts for one signed-in member at a
-- time (allocator.acting_staff) and sees only that member's restaurants; naming nobody it
-- sees nothing; any other login setting the same setting gains nothing.
select plan(33);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Staff A", "tables": [{"label": "A1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as ra \gset
select (allocator.import_layout('{"name": "Staff B", "tables": [{"label": "B1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as rb \gset
-- In the future of the real clock too: the console's login works on real time.
select (allocator.create_booking(:ra, 2, now() + interval '2 days') ->> 'booking_id')::bigint as ba \gset
select (allocator.create_booking(:rb, 2, now() + interval '2 days') ->> 'booking_id')::bigint as bb \gset
update allocator.bookings set state = 'manual_review', manual_review_reason = 'test' where id in (:ba, :bb);

create function public.allocator_test_sqlstate(p_sql text) returns text language plpgsql as $$
begin
  execute p_sql;
  return 'ok';
exception when others then
  return sqlstate;
end $$;
grant execute on function public.allocator_test_sqlstate(text) to public;

\set hash '''$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA'''

-- Accounts: bad input is refused with RA001 and writes nothing.
select throws_ok(format($$select allocator.add_staff('Bad Login', 'x', %L, array[1])$$, :hash), 'RA001', NULL,
  'a login with capitals and a space is refused');
select throws_ok(format($$select allocator.add_staff('ann', 'Ann', 'plain password', array[%s])$$, :ra), 'RA001', NULL,
  'a password that is not an argon2id hash is refused');
select throws_ok(format($$select allocator.add_staff('ann', 'Ann', %L, array[]::bigint[])$$, :hash), 'RA001', NULL,
  'a member works for at least one restaurant');
select throws_ok(format($$select allocator.add_staff('ann', 'Ann', %L, array[-5])$$, :hash), 'RA002', NULL,
  'an unknown restaurant is not found');
select throws_ok(format($$select allocator.add_staff('ann', '   ', %L, array[%s])$$, :hash, :ra), 'RA001', NULL,
  'a blank display name is refused');
select is((select count(*)::int from allocator.staff where login in ('ann', 'bob', 'eve')), 0, 'nothing was written');

select is(allocator.add_staff('ann', 'Ann', :hash, array[:ra, :ra]) -> 'restaurant_ids', ('[' || :ra || ']')::jsonb,
  'ann works for A (the repeated id counted once)');
select lives_ok(format($$select allocator.add_staff('bob', 'Bob', %L, array[%s])$$, :hash, :rb), 'bob works for B');
select throws_ok(format($$select allocator.add_staff('ann', 'Ann 2', %L, array[%s])$$, :hash, :rb), 'RA001', NULL,
  'a login is added once');
select ok(allocator.staff_info('ann') ? 'login' and not (allocator.staff_info('ann') ? 'password_hash'),
  'a member''s JSON never carries the hash');

-- The console's login.
create role allocator_test_console login;
grant allocator_console to allocator_test_console;
create role allocator_test_tenant login;
grant allocator_app, allocator_tenant to allocator_test_tenant;

-- Only superuser sessions may move the clock; the console works on real time.
select allocator.thaw_clock();
set local session authorization allocator_test_console;
select count(*) as none_bookings from allocator.bookings where id in (:ba, :bb) \gset
select set_config('allocator.acting_staff', 'ann', true);
select array_agg(id order by id)::text as ann_bookings from allocator.bookings where id in (:ba, :bb) \gset
select count(*) as ann_restaurants from allocator.restaurants where id in (:ra, :rb) \gset
select count(*) as ann_queue from allocator.manual_review_queue where booking_id in (:ba, :bb) \gset
select public.allocator_test_sqlstate(format($$select allocator.requeue(%s, 'staff:ann', 'retry')$$, :bb)) as ann_other \gset
select public.allocator_test_sqlstate(format($$select allocator.requeue(%s, 'staff:bob', 'retry')$$, :ba)) as ann_as_bob \gset
select public.allocator_test_sqlstate(format($$select allocator.requeue(%s, 'staff:ann', 'retry')$$, :ba)) as ann_own \gset
select public.allocator_test_sqlstate($$select allocator.add_staff('eve', 'Eve', 'x', array[1])$$) as ann_add \gset
select public.allocator_test_sqlstate($$select count(*) from allocator.staff$$) as ann_read_staff \gset
select public.allocator_test_sqlstate($$select allocator.claim_due('w', 10, 30)$$) as ann_claim \gset
select allocator.staff_password_hash('ann') = :hash as sees_hash \gset
select set_config('allocator.acting_staff', 'nobody', true);
select count(*) as nobody_bookings from allocator.bookings where id in (:ba, :bb) \gset
reset session authorization;

select is(:'none_bookings'::int, 0, 'the console acting for nobody sees no booking');
select is(:'ann_bookings'::text, '{' || :ba || '}', 'acting for ann it sees A''s booking only');
select is(:'ann_restaurants'::int, 1, 'and A only');
select is(:'ann_queue'::int, 1, 'the manual review queue shows A''s booking only');
select is(:'ann_other'::text, 'RA002', 'ann cannot requeue B''s booking (reported as not found)');
select is(:'ann_as_bob'::text, 'RA009', 'the console cannot record another member as the actor');
select is(:'ann_own'::text, 'ok', 'ann requeues A''s booking');
select is((select actor from allocator.booking_state_history where booking_id = :ba order by id desc limit 1),
  'staff:ann', 'the history names ann');
select is(:'ann_add'::text, '42501', 'the console cannot add staff');
select is(:'ann_read_staff'::text, '42501', 'nor read the accounts table');
select is(:'ann_claim'::text, '42501', 'nor claim queue rows like a worker');
select ok(:'sees_hash'::boolean, 'the console reads a hash to sign a member in');
select is(:'nobody_bookings'::int, 0, 'an unknown member sees nothing');

-- A tenant login setting the same setting gains nothing.
set local session authorization allocator_test_tenant;
select set_config('allocator.acting_staff', 'ann', true);
select count(*) as tenant_bookings from allocator.bookings where id in (:ba, :bb) \gset
select public.allocator_test_sqlstate($$select allocator.staff_password_hash('ann')$$) as tenant_hash \gset
reset session authorization;
select is(:'tenant_bookings'::int, 0, 'a tenant with no restaurants sees nothing, whatever it sets');
select is(:'tenant_hash'::text, '42501', 'and cannot read password hashes');

-- A disabled member is nobody; their tokens stop at once.
select allocator.freeze_clock('2026-06-01 12:00+00');
select allocator.issue_staff_token('bob', sha256('tok'::bytea), 'test', 30);
select is(allocator.staff_for_token(sha256('tok'::bytea)), 'bob', 'a token names its member');
select is(allocator.staff_for_token(sha256('other'::bytea)), null, 'an unknown token names nobody');
select allocator.freeze_clock('2026-07-02 12:00+00');
select is(allocator.staff_for_token(sha256('tok'::bytea)), null, 'an expired token names nobody');
select allocator.freeze_clock('2026-06-01 12:00+00');
select allocator.disable_staff('bob');
select allocator.thaw_clock();
select is(allocator.staff_for_token(sha256('tok'::bytea)), null, 'a disabled member''s token names nobody');
select is(allocator.staff_session('bob'), null, 'a disabled member has no session');
set local session authorization allocator_test_console;
select set_config('allocator.acting_staff', 'bob', true);
select count(*) as bob_bookings from allocator.bookings where id in (:ba, :bb) \gset
reset session authorization;
select is(:'bob_bookings'::int, 0, 'the console acting for a disabled member sees nothing');

-- Restaurants and passwords change; a new password moves password_changed_at (sessions end).
select (allocator.staff_info('ann') ->> 'password_changed_at') as before \gset
select allocator.set_staff_password('ann', :hash);
select isnt(allocator.staff_info('ann') ->> 'password_changed_at', :'before', 'a new password ends old sessions');
select is(allocator.set_staff_restaurants('ann', array[:rb]) -> 'restaurant_ids', ('[' || :rb || ']')::jsonb,
  'ann now works for B only');

select * from finish();
