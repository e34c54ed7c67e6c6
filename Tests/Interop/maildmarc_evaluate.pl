#!/usr/bin/perl
# Evaluates DMARC cases with Mail::DMARC::PurePerl (Debian libmail-dmarc-perl) against a fake DNS zone.
#
# stdin (JSON): {"zone": [[name, type, data], ...], "cases": [{"from": d, "dkim": [[domain, result], ...],
#   "spf": [domain, result] or null}, ...], "org_domains": [d, ...]}
# stdout (JSON): {"cases": [{"result", "disposition", "policy", "dkim", "spf", "reason"}], "org_domains": [...]}
# The resolver answers only from the zone (A, AAAA, MX, NS, TXT), so nothing touches the network.
use strict;
use warnings;
use JSON::PP;
use Net::DNS;
use Mail::DMARC::PurePerl;

package FakeResolver {
    sub new { my ($class, $zone) = @_; return bless { zone => $zone }, $class; }
    sub send {
        my ($self, $name, $type) = @_;
        $name = lc $name; $name =~ s/\.$//;
        my $packet = Net::DNS::Packet->new($name, $type);
        my @records = grep { lc($_->[0]) eq $name && uc($_->[1]) eq uc($type) } @{ $self->{zone} };
        my $exists = grep { lc($_->[0]) eq $name } @{ $self->{zone} };
        $packet->header->rcode($exists ? 'NOERROR' : 'NXDOMAIN');
        for my $r (@records) {
            my $data = $r->[2];
            if (uc $type eq 'TXT') {
                $data =~ s/(["\\])/\\$1/g;
                $data = "\"$data\"";
            }
            $packet->push(answer => Net::DNS::RR->new("$name 300 IN $type $data"));
        }
        return $packet;
    }
    # Net::DNS's query() returns nothing when there is no answer.
    sub query {
        my ($self, $name, $type) = @_;
        my $packet = $self->send($name, $type);
        return scalar($packet->answer) ? $packet : undef;
    }
}

my $input = decode_json(do { local $/; <STDIN> });
my $resolver = FakeResolver->new($input->{zone});
my @cases;
for my $case (@{ $input->{cases} }) {
    my $dmarc = Mail::DMARC::PurePerl->new;
    $dmarc->set_resolver($resolver);
    $dmarc->config->{report_store}{auto_save} = 0;
    $dmarc->header_from($case->{from});
    $dmarc->dkim([ map { { domain => $_->[0], selector => 's', result => $_->[1] } } @{ $case->{dkim} } ]);
    my $spf = $case->{spf};
    $dmarc->spf($spf ? [ { domain => $spf->[0], scope => 'mfrom', result => $spf->[1] } ] : []);
    my $result = $dmarc->validate;
    my ($policy, $reason);
    eval {
        my $published = $result->published;
        $policy = ($dmarc->is_subdomain && defined $published->sp) ? $published->sp : $published->p;
    };
    eval { $reason = join('; ', map { ($_->comment // $_->type) } @{ $result->reason || [] }); };
    push @cases, {
        result => $result->result, disposition => $result->disposition, policy => $policy,
        dkim => $result->dkim, spf => $result->spf, reason => $reason,
    };
}
my $org = Mail::DMARC::PurePerl->new;
my @orgs = map { $org->get_organizational_domain($_) } @{ $input->{org_domains} };
print encode_json({ cases => \@cases, org_domains => \@orgs });
