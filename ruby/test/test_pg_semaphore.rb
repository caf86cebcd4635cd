# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/pg"

# Counting semaphores in a PostgreSQL namespace [XL-PG-13, XL-PG-18].
class TestPgSemaphore < Minitest::Test
  include XLockTestHelper::Pg
  include XLockTestHelper::Waits

  # [XL-PG-13]
  def test_semaphore_capacity_and_slots
    s1 = pg_semaphore("rb-pg-sem", 2)
    s2 = pg_semaphore("rb-pg-sem", 2)
    assert_raises(XLock::CapacityMismatch) { XLock::Semaphore.new("rb-pg-sem", 3, namespace: @url) }
    assert_equal [0, 1], [s1.acquire, s2.acquire].sort
    assert_nil s2.try_acquire
    assert_raises(XLock::Timeout) { s2.acquire(timeout: 0.03) }
  end

  def test_semaphore_release_wakes_a_waiter
    s1 = pg_semaphore("rb-pg-sem", 2)
    s2 = pg_semaphore("rb-pg-sem", 2)
    [s1, s2].each(&:acquire)
    t = waiting_acquire(s2) # untimed: only the release can end it, never a last try at a deadline
    s1.release
    assert t.join(5), "the release did not end the wait within 5 s"
    assert_kind_of Integer, t.value
    assert_equal 2, s2.held
  ensure
    t&.kill
  end

  # [XL-PG-13] Close gives back the capacity marker (held while open, also without a permit) and waits for
  # the server's answer before it ends the session, whose release by the server is asynchronous: with the
  # backend stopped, close cannot return; once it has, an opener of another capacity never meets it.
  def test_close_waits_for_the_release
    sem = XLock::Semaphore.new("rb-pg-closing", 3, namespace: @url)
    closing = close_with_backend_stopped(sem)
    assert closing.join(5), "close did not return once the server could answer"
    pg_semaphore("rb-pg-closing", 4) # no CapacityMismatch
  end

  # A thread closing +sem+, started while its backend is stopped; returned once the backend runs again.
  def close_with_backend_stopped(sem)
    backend = sem.backend_pid
    Process.kill(:STOP, backend)
    closing = Thread.new { sem.close }
    wait_for("close to return or to wait for the server") { !closing.alive? || closing.status == "sleep" }
    assert closing.alive?, "close returned while the server could not answer its release"
    closing
  ensure
    Process.kill(:CONT, backend)
  end

  # [XL-PG-18]
  def test_remove_semaphore
    sem = pg_semaphore(NAME, 2)
    refute XLock.remove(NAME, kind: :semaphore, capacity: 2, namespace: @url)
    assert_raises(XLock::CapacityMismatch) do
      XLock.remove(NAME, kind: :semaphore, capacity: 3, namespace: @url)
    end
    sem.acquire
    assert_raises(XLock::WouldBlock) { XLock.remove(NAME, kind: :semaphore, capacity: 2, namespace: @url) }
    refute_nil sem.try_acquire # the failed removal gave back the slot it took
  end
end
