# frozen_string_literal: true

require "xlock/pg/session_keeping"

module XLock
  module PG
    # What locks and semaphores of a PostgreSQL namespace share: the namespace, the session
    # (XLock::PG::SessionKeeping), the monitor that serialises threads, and the deadline.
    class Handle
      include SessionKeeping

      attr_reader :name

      def namespace
        @ns.shown
      end

      def label
        @ns.label
      end

      def system_identifier
        @session&.system_identifier
      end

      def database
        @session&.database
      end

      def backend_pid
        @session&.backend_pid
      end

      def closed?
        @closed
      end

      # No files and no bell in a PostgreSQL namespace [XL-PG-12].
      def path = nil
      def bell = nil
      def bell_word = nil

      def sharing
        :database
      end

      def initialize_copy(_other)
        raise TypeError, "#{self.class} cannot be copied: open another object for the same name"
      end

      private

      def setup(name, namespace, listen: nil)
        @name = Names.checked(name)
        @ns = Namespace.new(namespace)
        @listen = listen ? Keys.channel(@ns.label, @name) : nil
        @monitor = Monitor.new
        @closed = false
        @session = new_session
      end

      def what
        raise NotImplementedError
      end

      # What the object holds, for messages: "lock" or "permit".
      def thing
        raise NotImplementedError
      end

      def deadline(timeout)
        return nil if timeout.nil?

        unless timeout.is_a?(Numeric)
          raise InvalidArgument, "timeout must be a number of seconds, not #{timeout.inspect}"
        end
        raise InvalidArgument, "timeout is NaN" if timeout.respond_to?(:nan?) && timeout.nan?
        return nil if timeout.infinite? || timeout > 9_000_000_000

        Process.clock_gettime(Process::CLOCK_MONOTONIC) + [timeout, 0].max
      end
    end
  end
end
