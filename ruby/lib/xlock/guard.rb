# frozen_string_literal: true

module XLock
  # The block form shared by locks and semaphores: acquire, yield, release, such that no asynchronous
  # exception (Thread#raise, Thread#kill, Timeout.timeout, Ctrl-C) can leave the object holding more than
  # before. Interrupts are deferred except inside the wait and inside the block; whether the acquisition
  # happened is read from the object itself (#held_by_current_thread), never from a local variable an
  # interrupt could skip.
  module Guard
    private

    def guarded(acquire, timeout)
      Thread.handle_interrupt(Object => :never) do
        before = held_by_current_thread
        begin
          acquired = Thread.handle_interrupt(Object => :immediate) { __send__(acquire, timeout: timeout) }
          Thread.handle_interrupt(Object => :immediate) { yield acquired }
        ensure
          release_one if held_by_current_thread > before
        end
      end
    end
  end
  private_constant :Guard
end
