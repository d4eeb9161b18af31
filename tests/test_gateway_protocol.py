"""The practice gateway speaks TWS API server version 178 exactly as ib_async 2.1 reads it.

Golden tests feed every message the server builds to ib_async's own Decoder at version 178 and fail on any decoder
error (ib_async logs a bad message and drops it, which otherwise shows up only as a hang). Socket tests connect the
unmodified `ib_async.IB` to the gateway on 127.0.0.1 (ephemeral port) and run every flow an IB adapter uses.
"""
from __future__ import annotations

import asyncio
import math
import struct
from datetime import datetime, timezone

import pytest

ib_async = pytest.importorskip("ib_async")
from ib_async import IB, ExecutionFilter, Future, Index, LimitOrder, Option  # noqa: E402
from ib_async.decoder import Decoder  # noqa: E402

from workstation.config import Settings  # noqa: E402
from workstation.sim.gateway import PracticeGateway, gateway_settings  # noqa: E402
from workstation.sim.gateway import protocol as P  # noqa: E402
from workstation.sim.gateway.protocol import ExecView, OrderView, WireContract  # noqa: E402

from gateway_support import HOST, decoder_errors, gateway, wait_for  # noqa: E402,F401  (fixtures)
from gateway_support import practice_settings as sim_settings  # noqa: E402


# ---------------------------------------------------------------------------------------- helpers
@pytest.fixture
async def ib(gateway, decoder_errors):
    client = IB()
    client.RaiseRequestErrors = False
    await client.connectAsync(HOST, gateway.port, clientId=7, timeout=5, raiseSyncErrors=True)
    yield client
    client.disconnect()


class Recorder:
    """A wrapper stand-in that records every call the decoder makes."""

    defaultTimezone = timezone.utc

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []
        self.ib = type("IBStub", (), {"TimezoneTWS": None})()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args):
            self.calls.append((name, args))
        return record


def decode(fields: list, handler_errors: list[str]) -> tuple[str, tuple]:
    """Frame `fields`, split them as the client does, decode at 178; exactly one wrapper call expected."""
    data = bytearray(P.frame(fields))
    size = struct.unpack(">I", data[:4])[0]
    assert size == len(data) - 4
    [wire] = P.split_frames(data)
    rec = Recorder()
    Decoder(rec, P.SERVER_VERSION).interpret(wire)
    assert not handler_errors, handler_errors
    assert len(rec.calls) == 1, rec.calls
    return rec.calls[0]


OPT = WireContract(220251017067000001, "SPX", "OPT", "20251017", 6700.0, "C", "100", "SMART", "CBOE", "USD",
                   "SPXW  251017C06700000", "SPXW")


# ----------------------------------------------------------------------------------- golden tests
def test_golden_small_messages(decoder_errors):
    cases = [
        (P.error(12, 200, "No security definition has been found for the request"),
         ("error", (12, 200, "No security definition has been found for the request", ""))),
        (P.managed_accounts(["DU123456"]), ("managedAccounts", ("DU123456",))),
        (P.next_valid_id(5), ("nextValidId", (5,))),
        (P.current_time(1760000000), ("currentTime", (1760000000,))),
        (P.market_data_type(4, 3), ("marketDataType", (4, 3))),
        (P.tick_price(4, 1, 12.3, 7.0), ("priceSizeTick", (4, 1, 12.3, 7.0))),
        (P.tick_size(4, 3, 9.0), ("tickSize", (4, 3, 9.0))),
        (P.tick_snapshot_end(4), ("tickSnapshotEnd", (4,))),
        (P.tick_option_computation(4, 13, 0.15, 0.5, 12.0, 6700.0),
         ("tickOptionComputation", (4, 13, 0, 0.15, 0.5, 12.0, -1.0, -2.0, -2.0, -2.0, 6700.0))),
        (P.contract_details_end(3), ("contractDetailsEnd", (3,))),
        (P.sec_def_opt_params_end(3), ("securityDefinitionOptionParameterEnd", (3,))),
        (P.open_order_end(), ("openOrderEnd", ())),
        (P.completed_orders_end(), ("completedOrdersEnd", ())),
        (P.exec_details_end(8), ("execDetailsEnd", (8,))),
        (P.position_end(), ("positionEnd", ())),
        (P.account_value("NetLiquidation", "100.00", "USD", "DU1"),
         ("updateAccountValue", ("NetLiquidation", "100.00", "USD", "DU1"))),
        (P.account_time(datetime(2025, 1, 2, 9, 45)), ("updateAccountTime", ("09:45",))),
        (P.account_download_end("DU1"), ("accountDownloadEnd", ("DU1",))),
        (P.account_update_multi(9, "DU1", "", "NetLiquidation", "1.00", "USD"),
         ("accountUpdateMulti", (9, "DU1", "", "NetLiquidation", "1.00", "USD"))),
        (P.account_update_multi_end(9), ("accountUpdateMultiEnd", (9,))),
        (P.account_summary(9, "DU1", "BuyingPower", "5.00", "USD"),
         ("accountSummary", (9, "DU1", "BuyingPower", "5.00", "USD"))),
        (P.account_summary_end(9), ("accountSummaryEnd", (9,))),
        (P.pnl(3, -1.5, 2.0, -3.5), ("pnl", (3, -1.5, 2.0, -3.5))),
    ]
    for fields, expected in cases:
        assert decode(fields, decoder_errors) == expected, fields


def test_golden_contract_details_and_chain_params(decoder_errors):
    gw = PracticeGateway(sim_settings())
    lst = gw.world.market.listing
    fut = gw.catalog.wire(lst.future.contract_id)
    for c in (gw.catalog.wire(416904), gw.catalog.wire(int(lst.contract_id[0])), fut):
        name, (req_id, cd) = decode(gw.details_message(11, c), decoder_errors)
        assert name == "contractDetails" and req_id == 11
        k = cd.contract
        assert (k.conId, k.symbol, k.secType, k.tradingClass, k.strike, k.right) == \
            (c.con_id, c.symbol, c.sec_type, c.trading_class, c.strike, c.right)
        assert k.lastTradeDateOrContractMonth == c.last_trade_date and k.multiplier == c.multiplier
        assert cd.minTick > 0 and cd.marketName
    name, args = decode(P.sec_def_opt_params(3, "SMART", 416904, "SPXW", "100", ["20251017", "20251020"],
                                             [6600.0, 6605.0, 6700.0]), decoder_errors)
    assert name == "securityDefinitionOptionParameter"
    assert args == (3, "SMART", "416904", "SPXW", "100", ["20251017", "20251020"], [6600.0, 6605.0, 6700.0])


def test_golden_orders_and_executions(decoder_errors):
    view = OrderView(11, 7, 1000123, OPT, "BUY", 3.0, "LMT", 12.35, "DAY", "DU123456", "sig-42-a", "Submitted",
                     filled=1.0, avg_fill_price=12.3, last_fill_price=12.3)
    fields = P.open_order(view)
    assert len(fields) == 127                       # the plain single-leg layout at version 178
    name, (order_id, contract, order, state) = decode(fields, decoder_errors)
    assert name == "openOrder" and order_id == 11
    assert contract.conId == OPT.con_id and contract.tradingClass == "SPXW" and contract.right == "C"
    assert (order.orderRef, order.permId, order.clientId, order.lmtPrice, order.totalQuantity, order.action) == \
        ("sig-42-a", 1000123, 7, 12.35, 3.0, "BUY")
    assert state.status == "Submitted" and order.account == "DU123456" and order.tif == "DAY"

    view.status, view.completed_status, view.completed_time = "Filled", "Filled", "20251017 14:31:00 UTC"
    name, (contract, order, state) = decode(P.completed_order(view), decoder_errors)
    assert name == "completedOrder" and order.permId == 1000123 and state.status == "Filled"
    assert order.orderRef == "sig-42-a" and state.completedStatus == "Filled"

    name, args = decode(P.order_status(view), decoder_errors)
    assert name == "orderStatus"
    assert args == (11, "Filled", 1.0, 0.0, 12.3, 1000123, 0, 12.3, 7, "", 0.0)

    at = datetime(2025, 10, 17, 14, 31, 5, tzinfo=timezone.utc)
    e = ExecView("0000f4241.00000001.01.01", 11, 7, 1000123, OPT, at, "DU123456", "CBOE", "BOT", 1.0, 12.3, 1.0,
                 12.3, "sig-42-a", 2, 1.25, None)
    fields = P.exec_details(-1, e)
    rec = Recorder()
    Decoder(rec, P.SERVER_VERSION).interpret([P.fmt(f) for f in fields])
    assert not decoder_errors
    name, (req_id, contract, ex) = rec.calls[0]
    assert name == "execDetails" and req_id == -1 and contract.conId == OPT.con_id
    assert (ex.execId, ex.orderId, ex.permId, ex.clientId, ex.side, ex.shares, ex.price, ex.orderRef) == \
        (e.exec_id, 11, 1000123, 7, "BOT", 1.0, 12.3, "sig-42-a")
    assert ex.time == at and ex.lastLiquidity == 2
    name, (report,) = decode(P.commission_report(e), decoder_errors)
    assert name == "commissionReport" and report.execId == e.exec_id and report.commission == 1.25


def test_golden_positions_and_portfolio(decoder_errors):
    name, (acct, contract, qty, cost) = decode(P.position("DU1", OPT, -2.0, 1230.0), decoder_errors)
    assert (name, acct, contract.conId, qty, cost) == ("position", "DU1", OPT.con_id, -2.0, 1230.0)
    name, args = decode(P.portfolio_value(OPT, 2.0, 12.5, 2500.0, 1230.0, 40.0, 0.0, "DU1"), decoder_errors)
    assert name == "updatePortfolio" and args[0].conId == OPT.con_id and args[1:] == \
        (2.0, 12.5, 2500.0, 1230.0, 40.0, 0.0, "DU1")


def test_every_tick_the_gateway_streams_decodes(decoder_errors):
    gw = PracticeGateway(sim_settings())
    from workstation.sim.gateway.server import _Line
    lst = gw.world.market.listing
    lines = [_Line(1, 416904, "IND", "SPX", False), _Line(2, lst.future.contract_id, "FUT", lst.future, False),
             _Line(3, int(lst.contract_id[10]), "OPT", 10, False), _Line(4, int(lst.contract_id[11]), "OPT", 11, True)]
    msgs = gw.tick_messages(lines)
    assert msgs
    for fields in msgs:
        name, args = decode(fields, decoder_errors)
        assert name in ("priceSizeTick", "tickSize", "tickOptionComputation")
        if args[0] == 4:
            assert args[1] in (66, 67, 69, 70, 83)     # delayed tick ids on a delayed line


# ------------------------------------------------------------------------------------ socket tests
async def test_connect_and_startup_sync(gateway, ib):
    assert ib.isConnected() and ib.managedAccounts() == ["DU123456"]
    assert ib.client.serverVersion() == 178
    t = await ib.reqCurrentTimeAsync()
    assert abs((t - gateway.now()).total_seconds()) < 5
    assert gateway.connected_clients == [7]


async def test_clients_below_178_are_refused_clearly(gateway):
    reader, writer = await asyncio.open_connection(HOST, gateway.port)
    writer.write(b"API\0" + struct.pack(">I", len(b"v100..176")) + b"v100..176")
    await writer.drain()
    data = bytearray(await asyncio.wait_for(reader.read(), 5))
    [fields] = P.split_frames(data)
    assert fields[0] == "4" and fields[3] == "503" and "178" in fields[4] and "176" in fields[4]
    writer.close()


async def test_duplicate_client_id_is_refused(gateway, ib):
    """TWS answers error 326 and closes the socket; ib_async gives up on the handshake."""
    other = IB()
    codes = []
    other.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    with pytest.raises((ConnectionError, TimeoutError)):
        await other.connectAsync(HOST, gateway.port, clientId=7, timeout=2)
    assert codes == [326] and not other.isConnected()
    assert ib.isConnected() and gateway.connected_clients == [7]


async def test_contract_details_classes_and_error_200(gateway, ib):
    spx = Index("SPX", "CBOE")
    await ib.qualifyContractsAsync(spx)
    assert spx.conId == 416904
    chains = await ib.reqSecDefOptParamsAsync("SPX", "", "IND", spx.conId)
    smart = {c.tradingClass: c for c in chains if c.exchange == "SMART"}
    assert set(smart) == {"SPX", "SPXW"}
    spxw_expiry = smart["SPXW"].expirations[0]
    monthly = smart["SPX"].expirations[0]
    details = await ib.reqContractDetailsAsync(Option("SPX", spxw_expiry, exchange="SMART", tradingClass="SPXW"))
    assert details and all(d.contract.tradingClass == "SPXW" for d in details)
    am = await ib.reqContractDetailsAsync(Option("SPX", monthly, exchange="SMART", tradingClass="SPX"))
    assert am and all(d.contract.lastTradeDateOrContractMonth == monthly for d in am)
    one = details[len(details) // 2].contract
    opt = Option("SPX", spxw_expiry, one.strike, "P", "SMART", tradingClass="SPXW")
    [q] = await ib.qualifyContractsAsync(opt)
    assert q.conId and q.right == "P" and q.multiplier == "100"
    fut = Future("ES", exchange="CME")
    await ib.qualifyContractsAsync(fut)
    assert fut.conId == gateway.world.market.listing.future.contract_id and fut.multiplier == "50"
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    assert await ib.qualifyContractsAsync(Option("SPX", "20200117", 1000, "C", "SMART")) == [None]
    assert 200 in errors


async def test_micro_future_is_listed_quoted_and_traded_beside_es(gateway, ib):
    """MES (what config/paper.yaml hedges with): multiplier 5, the same price as ES, fills into its own position."""
    es, mes = Future("ES", exchange="CME"), Future("MES", exchange="CME")
    await ib.qualifyContractsAsync(es, mes)
    assert mes.conId and mes.conId != es.conId and mes.multiplier == "5" and es.multiplier == "50"
    assert mes.lastTradeDateOrContractMonth == es.lastTradeDateOrContractMonth
    [details] = await ib.reqContractDetailsAsync(Future("MES", exchange="CME"))
    assert details.longName == "Micro E-mini S&P 500"
    t_es, t_mes = await asyncio.wait_for(ib.reqTickersAsync(es, mes), 5)
    assert t_mes.bid == t_es.bid and t_mes.ask == t_es.ask > 0
    trade = ib.placeOrder(mes, LimitOrder("BUY", 3, t_mes.ask, orderRef="coid-mes"))
    assert await wait_for(lambda: trade.orderStatus.status == "Filled") and trade.orderStatus.filled == 3
    assert await wait_for(lambda: mes.conId in {p.contract.conId for p in ib.positions()}, 2)
    positions = {p.contract.conId: p for p in ib.positions()}
    assert positions[mes.conId].position == 3 and positions[mes.conId].contract.multiplier == "5"
    assert es.conId not in positions


async def test_market_data_streaming_snapshot_and_delayed(gateway, ib):
    lst = gateway.world.market.listing
    row = int(len(lst) // 2)
    opt = Option(conId=int(lst.contract_id[row]), exchange="SMART")
    await ib.qualifyContractsAsync(opt)
    [snap] = await asyncio.wait_for(ib.reqTickersAsync(opt), 5)
    assert snap.ask > 0 and snap.askSize > 0 and snap.modelGreeks is not None
    ticker = ib.reqMktData(opt)
    spx = Index("SPX", "CBOE")
    await ib.qualifyContractsAsync(spx)
    index = ib.reqMktData(spx)
    assert await wait_for(lambda: ticker.ask > 0 and index.last > 0)
    assert ticker.marketDataType == 1
    ib.cancelMktData(opt)
    ib.cancelMktData(spx)

    gateway.set_live_entitled(False)
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    ib.reqMarketDataType(1)
    [live] = await asyncio.wait_for(ib.reqTickersAsync(opt), 5)
    assert 354 in errors
    ib.reqMarketDataType(3)
    [delayed] = await asyncio.wait_for(ib.reqTickersAsync(opt), 5)
    assert delayed.marketDataType == 3 and delayed.ask > 0


async def test_line_limit_is_100(gateway, ib):
    lst = gateway.world.market.listing
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    contracts = [Option(conId=int(cid), exchange="SMART") for cid in lst.contract_id[:101]]
    for c in contracts:
        ib.reqMktData(c)
    assert await wait_for(lambda: 101 in errors, 10)
    await ib.reqCurrentTimeAsync()                     # a later answer: every line request was read by then
    assert errors.count(101) == 1 and len(gateway.sessions[7].lines) == 100


async def test_orders_round_trip(gateway, ib):
    lst = gateway.world.market.listing
    row = int(len(lst) // 2)
    opt = Option(conId=int(lst.contract_id[row]), exchange="SMART")
    await ib.qualifyContractsAsync(opt)
    [t] = await asyncio.wait_for(ib.reqTickersAsync(opt), 5)

    trade = ib.placeOrder(opt, LimitOrder("BUY", 2, t.ask, orderRef="coid-fill"))
    assert await wait_for(lambda: trade.orderStatus.status == "Filled" and trade.fills
                          and trade.fills[-1].commissionReport.execId)
    assert trade.orderStatus.filled == 2
    assert sum(f.execution.shares for f in trade.fills) == 2
    assert all(f.commissionReport.commission > 0 for f in trade.fills)
    assert trade.fills[0].execution.orderRef == "coid-fill"

    positions = await ib.reqPositionsAsync()
    assert [(p.contract.conId, p.position) for p in positions] == [(opt.conId, 2.0)]
    fills = await ib.reqExecutionsAsync(ExecutionFilter(clientId=7))
    assert [f.execution.orderRef for f in fills] == ["coid-fill"]

    resting = ib.placeOrder(opt, LimitOrder("BUY", 1, 0.05, orderRef="coid-rest"))
    assert await wait_for(lambda: resting.orderStatus.status == "Submitted")
    resting.order.lmtPrice = 0.1
    ib.placeOrder(opt, resting.order)                  # modify: same order id
    await ib.reqCurrentTimeAsync()                     # answered after the modify was read
    open_trades = await ib.reqOpenOrdersAsync()
    assert [(tr.order.orderRef, tr.order.lmtPrice) for tr in open_trades] == [("coid-rest", 0.1)]
    assert [o.view.limit_price for o in gateway.orders.values() if o.view.order_ref == "coid-rest"] == [0.1]
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append((req_id, code))
    ib.cancelOrder(resting.order)
    assert await wait_for(lambda: resting.orderStatus.status == "Cancelled" and (resting.order.orderId, 202) in errors)
    ib.client.cancelOrder(9999)
    assert await wait_for(lambda: (9999, 10147) in errors)
    completed = await ib.reqCompletedOrdersAsync(False)
    assert {c.order.orderRef: c.orderStatus.status for c in completed} == {"coid-fill": "Filled",
                                                                          "coid-rest": "Cancelled"}
    values = {v.tag: v.value for v in ib.accountValues()}
    assert float(values["NetLiquidation"]) > 0
    pnl = ib.reqPnL("DU123456")
    assert await wait_for(lambda: math.isfinite(pnl.unrealizedPnL) and math.isfinite(pnl.dailyPnL))
    assert pnl.realizedPnL == 0                         # nothing closed yet
    # the portfolio line is (mark - cost) x 2 x 100; the account's P&L is that position's, marked a moment apart
    # (the market moves at speed 5), so within the option's spread on two contracts
    [item] = ib.portfolio()
    assert item.unrealizedPNL == pytest.approx((item.marketPrice - item.averageCost / 100) * 2 * 100, abs=0.01)
    assert abs(pnl.unrealizedPnL - item.unrealizedPNL) <= 2 * 100 * (t.ask - t.bid) + 0.01
    summary = await ib.accountSummaryAsync()
    assert any(v.tag == "BuyingPower" for v in summary)
    assert [p.position for p in ib.portfolio()] == [2.0]


async def test_faults_reject_and_partial_fills(gateway, ib):
    lst = gateway.world.market.listing
    opt = Option(conId=int(lst.contract_id[len(lst) // 2]), exchange="SMART")
    await ib.qualifyContractsAsync(opt)
    [t] = await asyncio.wait_for(ib.reqTickersAsync(opt), 5)
    gateway.reject_next_orders(1, "margin check failed")
    rejected = ib.placeOrder(opt, LimitOrder("BUY", 1, t.ask, orderRef="coid-rej"))
    assert await wait_for(lambda: rejected.orderStatus.status == "Cancelled")
    assert any(e.errorCode == 201 and "margin check failed" in e.message for e in rejected.log)

    gateway.partial_fills(1, pause_s=0.5)
    price = t.ask + 5.0                                 # stays marketable while the index moves
    trade = ib.placeOrder(opt, LimitOrder("BUY", 3, round(price, 1), orderRef="coid-part"))
    seen = set()
    assert await wait_for(lambda: seen.add((trade.orderStatus.status, trade.orderStatus.filled))
                          or trade.orderStatus.status == "Filled", 10)
    assert await wait_for(lambda: len(trade.fills) == 3)
    assert ("Submitted", 1.0) in seen


async def test_delay_and_dropped_connection(gateway, ib):
    gateway.set_delay(0.3)
    t0 = asyncio.get_running_loop().time()
    await ib.reqCurrentTimeAsync()
    assert asyncio.get_running_loop().time() - t0 >= 0.3
    gateway.set_delay(0)
    lost = asyncio.Event()
    ib.disconnectedEvent += lost.set
    assert gateway.drop_connections(7) == 1
    await asyncio.wait_for(lost.wait(), 5)
    assert not ib.isConnected() and gateway.connected_clients == []
    await ib.connectAsync(HOST, gateway.port, clientId=7, timeout=5, raiseSyncErrors=True)
    assert ib.isConnected()


async def test_message_rate_limit(gateway, ib):
    """A client over 50 messages/s gets error 100 for the excess; far over, it is disconnected like TWS does."""
    gateway.max_msg_rate = 20
    errors = []
    ib.errorEvent += lambda req_id, code, msg, contract: errors.append(code)
    ib.client.MaxRequests = 0                            # switch off ib_async's own throttle
    for _ in range(30):
        ib.client.reqCurrentTime()
    assert await wait_for(lambda: 100 in errors)
    assert ib.isConnected()
    await asyncio.sleep(1.1)                             # the gateway's rate is per wall-clock second: a new second
    for _ in range(200):
        ib.client.reqCurrentTime()
    assert await wait_for(lambda: not ib.isConnected())
    # the gateway keeps serving
    fresh = IB()
    await fresh.connectAsync(HOST, gateway.port, clientId=8, timeout=5, raiseSyncErrors=True)
    assert fresh.isConnected()
    fresh.disconnect()


def test_gateway_settings_override_seed_and_speed():
    s = gateway_settings(Settings(), seed=3, speed=20)
    assert (s.market.simulator.seed, s.market.simulator.speed) == (3, 20)
    assert Settings().market.simulator.seed != 3 or Settings().market.simulator.speed != 20
