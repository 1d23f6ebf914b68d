-- Reverts revision 0001: the whole allocator schema. Roles and extensions stay: other
-- databases of the server and other schemas may use them.
drop schema if exists allocator cascade;
