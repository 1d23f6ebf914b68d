-- Reverts revision 0001: the whole allocator schema. Extensions stay, other schemas may use them.
drop schema if exists allocator cascade;
