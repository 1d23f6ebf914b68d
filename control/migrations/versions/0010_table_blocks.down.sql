-- Reverts revision 0010 (the code files are applied again by the next upgrade).
drop function if exists allocator.block_tables(bigint, bigint[], timestamptz, timestamptz, text, text);
drop function if exists allocator.unblock_tables(bigint, bigint[], text);
drop table allocator.table_blocks;
