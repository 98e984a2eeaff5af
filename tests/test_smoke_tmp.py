def test_closed_call(breaker):
    result = breaker.call({"amount": 5})
    print(result.status, result.error, result.cause, result.output, result.states())
    assert result.status == "SUCCEEDED"


def test_failing(breaker):
    breaker.service.behave(then="fail")
    result = breaker.call({"amount": 5})
    print(result.status, result.error, result.cause, result.states())
    print(breaker.item())
    r2 = breaker.call({"amount": 5})
    print(r2.status, r2.error, r2.cause, r2.states())
    print(breaker.runtime.invocations)
