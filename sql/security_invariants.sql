-- Privileges for check_invariants (revision 0006).
grant execute on function allocator.check_invariants() to allocator_ops, allocator_readonly;
