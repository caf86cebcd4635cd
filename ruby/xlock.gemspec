# frozen_string_literal: true

require_relative "lib/xlock/version"
require_relative "ext/xlock/vendor"

# Built from the git checkout, the gem carries libxlock's C sources (ext/xlock/vendor/, git-ignored), so
# that `gem install` compiles them and needs no system libxlock.
XLockVendor.copy_from_checkout

Gem::Specification.new do |spec|
  spec.name = "xlock"
  spec.version = XLock::VERSION
  spec.summary = "Named, crash-safe locks and semaphores shared by every process on a host, in every language"
  spec.description = <<~TEXT
    Ruby binding to libxlock (spec xlock/1): a lock named "billing-export" means the same thing in Ruby,
    Python, C and the shell. flock(2) on lock files in a namespace directory, released by the kernel when
    the holder dies; waiters are woken by the release itself; crash-safe counting semaphores and raw POSIX
    named semaphores. The native extension compiles libxlock's own C sources.
  TEXT
  spec.authors = ["xlock contributors"]
  spec.license = "MIT"
  spec.homepage = "https://github.com/xlock/xlock"
  spec.metadata = {
    "homepage_uri" => "https://github.com/xlock/xlock",
    "source_code_uri" => "https://github.com/xlock/xlock/tree/main/ruby",
    "documentation_uri" => "https://github.com/xlock/xlock/blob/main/ruby/README.md",
    "bug_tracker_uri" => "https://github.com/xlock/xlock/issues",
    "changelog_uri" => "https://github.com/xlock/xlock/blob/main/spec/CHANGELOG.md",
    "rubygems_mfa_required" => "true"
  }
  spec.required_ruby_version = ">= 3.0"
  spec.requirements << "Linux (spec xlock/1, section 15: other platforms are not supported yet)"
  spec.requirements << "a C compiler and the Ruby headers (Debian: ruby-dev)"
  spec.platform = Gem::Platform::RUBY

  spec.files = Dir.chdir(__dir__) do
    Dir["lib/**/*.rb", "ext/xlock/*.{c,h,rb}", "ext/xlock/vendor/*.{c,h}", "exe/*", "README.md", "LICENSE"]
  end
  spec.bindir = "exe"
  spec.executables = ["xlock-driver"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/xlock/extconf.rb"]
end
