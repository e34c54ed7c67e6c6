#!/usr/bin/perl
# Verify every DKIM-Signature of each message with Mail::DKIM (independent of Signet).
# usage: maildkim_verify.pl KEYFILE MESSAGE...
# KEYFILE: lines `selector._domainkey.domain<TAB>TXT value`. DNS is answered from it,
# so nothing leaves the machine. Prints: file, d=, s=, a=, result, detail.
use strict;
use warnings;
use Mail::DKIM::Verifier;
use FindBin;
use lib $FindBin::Bin;
use KeyFileDNS;

KeyFileDNS::install(shift @ARGV);

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
