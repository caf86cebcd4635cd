# frozen_string_literal: true

module XLockTestHelper
  # Raw POSIX semaphores (XLock::PosixSemaphore) of this test's namespace, closed at teardown.
  module RawSemaphores
    def posix(name, value: 1)
      track(XLock::PosixSemaphore.new(name, value: value, namespace: @ns))
    end

    # A raw semaphore name of this process, unlinked before and after the block (raw semaphores outlive
    # the namespace directory) [XL-PSEM-5].
    def with_raw_name(stem)
      name = "#{stem}-#{Process.pid}"
      XLock.remove(name, kind: :posix_semaphore, namespace: @ns)
      yield name
    ensure
      XLock.remove(name, kind: :posix_semaphore, namespace: @ns)
    end
  end
end
