-- Reverts revision 0004.
drop table allocator.nightly_plans;

-- Only the three timeouts are reset: other settings of the roles in this database stay.
do $$
declare
  v_role text;
  v_setting text;
begin
  foreach v_role in array array['allocator_app', 'allocator_ops'] loop
    foreach v_setting in array array['lock_timeout', 'statement_timeout', 'idle_in_transaction_session_timeout'] loop
      execute pg_catalog.format('alter role %I in database %I reset %I', v_role, pg_catalog.current_database(), v_setting);
    end loop;
  end loop;
end
$$;
