# frozen_string_literal: true

require "open3"
require_relative "bell_victim"

module XLockTestHelper
  # test_planted_bell.rb's victim process and the checks of what it reports.
  module PlantedBell
    MEMBER = %w[setpriv --reuid=65534 --regid=65534 --clear-groups].freeze
    TIMEOUT_MS = 200
    OVERRUN_MS = 50 # the spec's bound on a deadline overrun [XL-THREAT-2, XL-WAIT-12]

    def as_member(*command)
      out, status = Open3.capture2e(*MEMBER, *command)
      assert status.success?, "#{command.join(' ')} as uid 65534 failed: #{out}"
    end

    # Runs BellVictim::SCRIPT; yields its first report ({"ready" => bell status}) before it goes on, then
    # returns the reports and asserts the process ended normally (no SIGBUS, no abort).
    def run_victim(&ready)
      Open3.popen3(RUBY, "-I", LIB, "-e", BellVictim::SCRIPT, @world, JSON.generate(WAIT_SYSCALLS),
                   TIMEOUT_MS.to_s) do |stdin, stdout, stderr, thread|
        reports = victim_reports(stdin, stdout, stderr, &ready)
        assert_ended_normally(thread.value, stderr)
        assert_equal(%w[lock semaphore], reports.map { |r| r["kind"] })
        reports
      end
    end

    def victim_reports(stdin, stdout, stderr)
      ready = JSON.parse(stdout.gets || flunk("the victim ended at once: #{stderr.read}"))
      yield ready if block_given?
      stdin.puts "go"
      stdin.close
      stdout.each_line.map { |line| JSON.parse(line) }
    end

    def assert_ended_normally(status, stderr)
      refute status.signaled?, "the victim was killed by signal #{status.termsig}: #{stderr.read}"
      assert status.success?, "the victim failed: #{stderr.read}"
    end

    def assert_waits_survive(reports, bell_usable: false)
      reports.each { |r| assert_wait_survived(r, "#{r['kind']}: #{r.inspect}", bell_usable) }
    end

    def assert_wait_survived(report, what, bell_usable)
      assert_equal "world_shared", report["sharing"], what
      refute_equal "usable", report["bell_status"], what unless bell_usable
      assert_timed_out_on_time(report, what)
      assert_kind_of Float, report["woken_after_ms"], "the release did not end the wait: #{what}"
      assert_equal "IOError", report["raise"], what
      assert_equal false, report["held_after_raise"], what
    end

    def assert_timed_out_on_time(report, what)
      assert_equal "TIMEOUT", report["timed"], what
      assert_operator report["timed_ms"], :>=, TIMEOUT_MS, "returned before its deadline [XL-WAIT-3]: #{what}"
      assert_operator report["timed_ms"], :<, TIMEOUT_MS + OVERRUN_MS,
                      "overran its deadline by more than 50 ms: #{what}"
    end
  end
end
