-- Reverts revision 0006.
drop function if exists allocator.check_invariants();
