# frozen_string_literal: true

module XLock
  module PG
    # The shared capacity marker of a counting semaphore [XL-PG-13]: every open object of a name holds the
    # marker of its capacity shared, so an object of another capacity sees the live participants.
    module Capacity
      OTHERS = "SELECT min(m.n) FROM pg_locks l JOIN unnest($1::int8[]) WITH ORDINALITY m(k, n) " \
               "ON m.k = ((l.classid::int8 << 32) | l.objid::int8) " \
               "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"

      module_function

      # Takes the marker of +capacity+ on +session+; the capacity of a live participant that disagrees,
      # or nil.
      def join(session, label, name, capacity)
        session.one("SELECT pg_advisory_lock_shared($1::int8)", [Keys.key("c", label, name, capacity)],
                    "taking the capacity marker")
        others = (1..1000).reject { |m| m == capacity }
        keys = others.map { |m| Keys.key("c", label, name, m) }
        found = session.one(OTHERS, [Keys.array(keys)], "checking the capacity").first.first
        found && others[found.to_i - 1]
      end
    end
  end
end
