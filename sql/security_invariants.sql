-- Privileges for check_invariants (revision 0006).

revoke execute on all functions in schema allocator from public;
grant execute on function allocator.check_invariants() to allocator_ops, allocator_readonly;
