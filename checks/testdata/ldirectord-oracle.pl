#!/usr/bin/perl
# Runs one of ldirectord's own check_* functions, loaded from the installed
# /usr/sbin/ldirectord (Debian's ldirectord package) with its main program
# cut out, and prints "up" or "down". Used by the differential test in
# oracle_test.go; ldirectord's code is read at run time, never copied.
#
# Usage: ldirectord-oracle.pl FUNCTION KEY=VALUE...
#   keys starting with v_ go to the virtual service hash, r_ to the real one.
use strict;
use warnings;
no warnings "once";

my $path = $ENV{LDIRECTORD} || "/usr/sbin/ldirectord";
open(my $fh, "<", $path) or die "open $path: $!";
my $src = do { local $/; <$fh> };
close($fh);
$src =~ s/^# main code\n.*?^# functions\n//ms or die "no main code block in $path";
{
	local @ARGV = ();
	no warnings;
	eval "package main; $src; 1" or die "loading $path: $@";
}

my ($func, @kv) = @ARGV;
my (%v, %r);
for (@kv) {
	my ($k, $val) = split(/=/, $_, 2);
	if ($k =~ s/^v_//) { $v{$k} = $val } elsif ($k =~ s/^r_//) { $r{$k} = $val } else { die "bad key $k" }
}

my $state = "none";
{
	no warnings 'redefine';
	*main::service_set = sub { $state = $_[2]; };
	*main::ld_log = sub { };
	*main::ld_debug = sub { };
}
$main::DEBUG = 0;
my $f = \&{"main::$func"};
$f->(\%v, \%r);
print "$state\n";
