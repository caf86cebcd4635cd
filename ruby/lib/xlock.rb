# frozen_string_literal: true

# xlock: named, crash-safe locks and semaphores shared by every process on a host, in every language
# (spec xlock/1). A binding to libxlock, compiled into xlock/xlock_ext.
#
#   XLock.lock("billing-export", timeout: 5) { export! }
module XLock
end

require "xlock/version"
require "xlock/errors"
require "xlock/deprecation"
require "xlock/names"
require "xlock/xlock_ext"
require "xlock/lock"
require "xlock/semaphore"
require "xlock/posix_semaphore"
require "xlock/mapping"
require "xlock/remove"
require "xlock/pg/dispatch" # postgresql:// namespaces; loads the pg gem only when one is used

# xlock/1 for Ruby: the lock, semaphore and name API on libxlock (spec/xlock-1.md).
module XLock
  # Opens the lock +name+, waits for it (at most +timeout+ seconds; nil waits as long as it takes), yields
  # the XLock::Lock, then releases and closes it, also when the block raises or the thread is killed.
  # Options as XLock::Lock.new. Returns the block's value; raises XLock::Timeout when the deadline passes.
  def self.lock(name, timeout: nil, **options)
    lock = Lock.new(name, **options)
    begin
      lock.synchronize(timeout: timeout) { yield lock }
    ensure
      lock.close
    end
  end
end
