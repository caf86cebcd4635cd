# frozen_string_literal: true

# PostgreSQL namespaces (spec xlock/1 section 16) on the pg gem, loaded only when a postgresql:// or
# postgres:// namespace is used: `require "xlock"` does not load pg.
begin
  require "pg"
rescue LoadError
  raise XLock::UnsupportedBackend,
        "PostgreSQL namespaces need the pg gem: gem install pg (or apt-get install ruby-pg) [XL-PG-15]"
end
require "xlock/pg/keys"
require "xlock/pg/namespace"
require "xlock/pg/session"
require "xlock/pg/lock"
require "xlock/pg/semaphore"
require "xlock/pg/remove"

module XLock
  # PostgreSQL namespaces [spec §16]: XLock::PG::Lock and XLock::PG::Semaphore, and the registry of live
  # sessions that a forked child abandons [XL-PG-16].
  module PG
    @sessions = {}.compare_by_identity
    @sessions_lock = Mutex.new
    @abandoned = []

    class << self
      # Connections abandoned in forked children: kept referenced, never finished [XL-PG-16].
      attr_reader :abandoned

      def register(session)
        @sessions_lock.synchronize { @sessions[session] = true }
      end

      def unregister(session)
        @sessions_lock.synchronize { @sessions.delete(session) }
      end

      # In a forked child: every inherited session is abandoned [XL-PG-16].
      def after_fork_child
        sessions = @sessions.keys
        @sessions = {}.compare_by_identity
        @sessions_lock = Mutex.new
        sessions.each(&:abandon_in_child)
      end
    end

    # Process._fork (Ruby >= 3.1) runs for every fork: Process.fork, Kernel#fork, IO.popen("-").
    module ForkHook
      def _fork
        pid = super
        XLock::PG.after_fork_child if pid.zero?
        pid
      end
    end
    Process.singleton_class.prepend(ForkHook)
  end
end
