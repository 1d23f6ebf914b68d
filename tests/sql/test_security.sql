-- Roles and tenancy: the app role goes through the RPCs only; a tenant sees only its restaurants.
select plan(18);

select allocator.freeze_clock('2026-06-01 12:00+00');
select (allocator.import_layout('{"name": "Tenant A", "tables": [{"label": "A1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as ra \gset
select (allocator.import_layout('{"name": "Tenant B", "tables": [{"label": "B1", "max_capacity": 4}]}')
  ->> 'restaurant_id')::bigint as rb \gset
select (allocator.create_booking(:rb, 2, '2026-06-01 19:00+00') ->> 'booking_id')::bigint as bb \gset

-- Runs a statement as whoever is the current role and returns its SQLSTATE ('ok' if none).
create function public.allocator_test_sqlstate(p_sql text) returns text language plpgsql as $$
begin
  execute p_sql;
  return 'ok';
exception when others then
  return sqlstate;
end $$;
grant execute on function public.allocator_test_sqlstate(text) to public;

set local role allocator_app;
select public.allocator_test_sqlstate(format('update allocator.bookings set party_size = 3 where id = %s', :bb)) as upd \gset
select public.allocator_test_sqlstate(format(
  $$insert into allocator.allocations (restaurant_id, booking_id, table_id, period, kind)
    select %s, %s, id, '[2026-06-01 19:00+00, 2026-06-01 20:00+00)', 'confirmed' from allocator.tables where label = 'B1'$$,
  :rb, :bb)) as ins \gset
select public.allocator_test_sqlstate(format($$select allocator.transition(%s, 1, 'cancelled', 'app')$$, :bb)) as tr \gset
select public.allocator_test_sqlstate(format($$select allocator.requeue(%s, 'staff:x', 'y')$$, :bb)) as rq \gset
select public.allocator_test_sqlstate(format($$select allocator.create_booking(%s, 2, '2026-06-01 20:00+00')$$, :ra)) as cr \gset
select count(*) as app_sees from allocator.bookings where restaurant_id in (:ra, :rb) \gset
reset role;

select is(:'upd'::text, '42501', 'allocator_app cannot UPDATE bookings directly');
select is(:'ins'::text, '42501', 'allocator_app cannot INSERT allocations directly');
select is(:'tr'::text, '42501', 'allocator_app cannot call the internal transition function');
select is(:'rq'::text, '42501', 'allocator_app cannot run manual actions');
select is(:'cr'::text, 'ok', 'allocator_app creates bookings through the RPC');
select is(:'app_sees'::int, 2, 'an unrestricted app role reads every restaurant''s bookings');

set local role allocator_readonly;
select public.allocator_test_sqlstate($$select count(*) from allocator.booking_state_history$$) as ro_read \gset
select public.allocator_test_sqlstate(format($$select allocator.create_booking(%s, 2, '2026-06-01 20:00+00')$$, :ra)) as ro_create \gset
reset role;
select is(:'ro_read'::text, 'ok', 'allocator_readonly reads the history');
select is(:'ro_create'::text, '42501', 'allocator_readonly cannot create bookings');

set local role allocator_ops;
select public.allocator_test_sqlstate($$select * from allocator.manual_review_queue$$) as ops_view \gset
select public.allocator_test_sqlstate($$select allocator.expire_holds()$$) as ops_sweep \gset
reset role;
select is(:'ops_view'::text, 'ok', 'allocator_ops reads the manual review queue');
select is(:'ops_sweep'::text, 'ok', 'allocator_ops runs the hold sweeper');

-- Tenancy: a login role in allocator_tenant is limited to its tenant_members restaurants.
create role allocator_test_tenant_a login;
grant allocator_app, allocator_tenant to allocator_test_tenant_a;
insert into allocator.tenant_members (restaurant_id, role_name) values (:ra, 'allocator_test_tenant_a');

-- Only superuser sessions may move the clock; the tenant works on real time.
select allocator.thaw_clock();
set local session authorization allocator_test_tenant_a;
select public.allocator_test_sqlstate($$select set_config('allocator.clock', '2020-01-01', true); select allocator.now()$$) as t_clock \gset
select set_config('allocator.clock', '', true);
select count(*) as t_bookings from allocator.bookings where restaurant_id in (:ra, :rb) \gset
select count(*) as t_restaurants from allocator.restaurants where id in (:ra, :rb) \gset
select public.allocator_test_sqlstate(format($$select allocator.create_booking(%s, 2, '2026-06-01 20:00+00')$$, :rb)) as t_other \gset
select public.allocator_test_sqlstate(format($$select allocator.cancel_booking(%s)$$, :bb)) as t_cancel \gset
select public.allocator_test_sqlstate(format($$select * from allocator.booking_history(%s)$$, :bb)) as t_hist \gset
select public.allocator_test_sqlstate(format($$select allocator.create_booking(%s, 2, now() + interval '1 day')$$, :ra)) as t_own \gset
reset session authorization;

select is(:'t_bookings'::int, 1, 'a tenant sees its own restaurant''s booking only (one in A, none of B''s)');
select is(:'t_restaurants'::int, 1, 'a tenant sees its own restaurant only');
select is(:'t_other'::text, 'RA002', 'a tenant cannot book at another restaurant (reported as not found)');
select is(:'t_cancel'::text, 'RA002', 'a tenant cannot cancel another restaurant''s booking');
select is(:'t_hist'::text, 'RA002', 'a tenant cannot read another restaurant''s history');
select is(:'t_own'::text, 'ok', 'a tenant books at its own restaurant');
select is(:'t_clock'::text, 'RA009', 'a non-superuser session cannot move the clock');
select is((select state from allocator.bookings where id = :bb), 'created', 'the other tenant''s booking is untouched');

select * from finish();
