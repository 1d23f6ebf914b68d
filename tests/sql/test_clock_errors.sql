-- The clock can be frozen per transaction; the error helper raises the project's SQLSTATEs.
select plan(8);

select is(allocator.now(), transaction_timestamp(), 'the clock follows the transaction by default');
select allocator.freeze_clock('2026-03-29 01:30+00');
select is(allocator.now(), '2026-03-29 01:30+00'::timestamptz, 'freeze_clock sets allocator.now()');
set local allocator.clock = '2026-10-25 00:30+00';
select is(allocator.now(), '2026-10-25 00:30+00'::timestamptz, 'SET LOCAL allocator.clock works too');
select allocator.thaw_clock();
select is(allocator.now(), transaction_timestamp(), 'thaw_clock returns to the real time');

select throws_ok($$ select allocator.raise_error('conflict', 'taken') $$, 'RA003', 'taken',
  'raise_error raises the code registered for the name');
select throws_ok($$ select allocator.raise_error('no_such_error', 'x') $$, 'XX000', NULL,
  'an unregistered error name is an internal error, not a silent success');

create function pg_temp.diag() returns text language plpgsql as $$
declare v_detail text; v_hint text;
begin
  perform allocator.raise_error('not_found', 'booking 7 does not exist', 'looked in restaurant 3', 'check the id');
  return 'no error';
exception when others then
  get stacked diagnostics v_detail = pg_exception_detail, v_hint = pg_exception_hint;
  return v_detail || ' / ' || v_hint;
end $$;
select is(pg_temp.diag(), 'looked in restaurant 3 / check the id', 'DETAIL and HINT are carried');

select is((select count(*)::int from allocator.error_codes where sqlstate !~ '^RA[0-9]{3}$'), 0,
  'every registered code is in class RA');

select * from finish();
