#!/usr/bin/perl
# Verify every DKIM-Signature of each message with Mail::DKIM (independent of Signet).
# usage: maildkim_verify.pl KEYFILE MESSAGE...
# KEYFILE: lines `selector._domainkey.domain<TAB>TXT value`. DNS is answered from it,
# so nothing leaves the machine. Prints: file, d=, s=, a=, result, detail.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use Net::DNS::RR;

my $keyfile = shift @ARGV;
my %keys;
open(my $kf, '<', $keyfile) or die "cannot read $keyfile: $!";
while (my $line = <$kf>) {
    chomp $line;
    next if $line =~ /^\s*(#|$)/;
    my ($name, $value) = split(/\s+/, $line, 2);
    $name = lc $name;
    $name =~ s/\.$//;
    $keys{$name} = $value;
}
close $kf;

{
    no warnings 'redefine';
    *Mail::DKIM::DNS::query = sub {
        my ($name, $type) = @_;
        $name = lc $name;
        $name =~ s/\.$//;
        return () unless $type eq 'TXT' && exists $keys{$name};
        my $rr = Net::DNS::RR->new(name => $name, type => 'TXT', txtdata => $keys{$name});
        return ($rr);
    };
}

for my $path (@ARGV) {
    open(my $fh, '<:raw', $path) or die "cannot read $path: $!";
    my $verifier = Mail::DKIM::Verifier->new();
    while (my $chunk = <$fh>) {
        $verifier->PRINT($chunk);
    }
    close $fh;
    $verifier->CLOSE();
    my @signatures = $verifier->signatures;
    print "$path\t-\t-\t-\tnone\tno DKIM-Signature\n" unless @signatures;
    for my $sig (@signatures) {
        my $detail = $sig->result_detail // '';
        $detail =~ s/[\t\r\n]/ /g;
        printf "%s\t%s\t%s\t%s\t%s\t%s\n", $path, $sig->domain // '-', $sig->selector // '-',
            $sig->algorithm // '-', $sig->result, $detail;
    }
}
