-- Reverts revision 0005.
drop function if exists
  allocator.nightly_optimize(bigint),
  allocator.replan_day(bigint, date),
  allocator.apply_optimal_assignment(bigint, date, jsonb, numeric, text),
  allocator.optimize_day(bigint, date, integer),
  allocator.optimize_day_solve(bigint, date, integer);
drop table if exists allocator.optimizer_runs, allocator.plpy_modules;
