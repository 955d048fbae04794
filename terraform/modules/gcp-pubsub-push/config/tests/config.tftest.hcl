run "push_url_and_audience" {
  command = plan

  variables {
    function_url          = "https://orders-eventsource.default.example.com/"
    endpoint              = "/orders"
    topic                 = "orders"
    service_account_email = "pusher@p.iam.gserviceaccount.com"
  }

  assert {
    condition     = output.push_endpoint == "https://orders-eventsource.default.example.com/orders"
    error_message = "the endpoint is appended to the function URL"
  }
  assert {
    condition     = output.audience == output.push_endpoint
    error_message = "the audience defaults to the push URL"
  }
  assert {
    condition     = output.event_source_config.push.email == "pusher@p.iam.gserviceaccount.com" && output.event_source_config.topic == "orders"
    error_message = "the EventSource settings check the token's email"
  }
}

run "explicit_audience" {
  command = plan

  variables {
    function_url          = "https://x.example.com"
    topic                 = "t"
    audience              = "knevents"
    service_account_email = "pusher@p.iam.gserviceaccount.com"
  }

  assert {
    condition     = output.audience == "knevents" && output.push_endpoint == "https://x.example.com/"
    error_message = "an explicit audience is kept"
  }
}

run "plain_http_is_refused" {
  command = plan

  variables {
    function_url          = "http://x.example.com"
    topic                 = "t"
    service_account_email = "pusher@p.iam.gserviceaccount.com"
  }

  expect_failures = [var.function_url]
}
