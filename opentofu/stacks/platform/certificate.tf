data "aws_route53_zone" "public" {
  name         = var.route53_zone_name
  private_zone = false
}

# Served by the load balancers the AWS Load Balancer Controller creates from Ingresses.
resource "aws_acm_certificate" "environment" {
  domain_name               = var.domain
  subject_alternative_names = ["*.${var.domain}"]
  validation_method         = "DNS"

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = {
    for o in aws_acm_certificate.environment.domain_validation_options : o.domain_name => {
      name   = o.resource_record_name
      type   = o.resource_record_type
      record = o.resource_record_value
    }
  }

  zone_id         = data.aws_route53_zone.public.zone_id
  name            = each.value.name
  type            = each.value.type
  records         = [each.value.record]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "environment" {
  certificate_arn         = aws_acm_certificate.environment.arn
  validation_record_fqdns = [for r in aws_route53_record.certificate_validation : r.fqdn]
}
