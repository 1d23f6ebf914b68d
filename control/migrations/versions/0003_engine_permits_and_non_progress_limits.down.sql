-- Reverts revision 0003.
alter table allocator.assignment_queue drop column if exists deferrals;
drop table if exists allocator.permits;
