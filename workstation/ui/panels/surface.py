"""Volatility surface: 3-D model surface with market points (OpenGL), smile per expiry, ATM term
structure and a residual heatmap (strike x expiry). Selection and binning only; no pricing here."""
from __future__ import annotations

from datetime import date

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from .. import market_time, theme
from ..bridge import Bridge
from ..gl import gl_view_window, opengl_status
from ..plots import calm, follow
from .base import Panel

MONEYNESS_BINS = np.linspace(0.80, 1.20, 21)
Z_HEIGHT = 5.0              # the 3-D box is 10 (moneyness) x 10 (sqrt expiry) x Z_HEIGHT (IV)


def model_iv_of(surface, engine_iv=None) -> np.ndarray | None:
    """Model IV per surface row, as the engine provides it (its model values aligned with `surface`)."""
    if engine_iv is None:
        return None
    values = np.asarray(engine_iv, dtype=float)
    return values if values.shape == np.shape(surface.iv_mid) else None


class SurfaceView:
    """What the plots need from one Surface: per-expiry OTM rows, labels, ATM vols, residual grid."""

    def __init__(self, surface, model_iv: np.ndarray | None) -> None:
        snap = surface.snapshot
        self.surface = surface
        self.model_iv = model_iv
        self.strike = snap.strike
        self.series: list[tuple[str, float, np.ndarray]] = []   # label, maturity, rows sorted by strike
        self.keys: list[tuple] = []                             # (expiry, am_settled) of each series
        by_expiry = surface.smile_rows           # made in the engine's worker (Surface.prepare_views)
        for j, e in sorted(enumerate(surface.expiries), key=lambda je: je[1].maturity):
            if not e.reliable:
                continue
            rows = by_expiry[j]
            if len(rows) < 3:
                continue
            day = e.expiry.astype("datetime64[D]").astype(date)
            label = f"{day:%d %b %y} {'AM' if e.am_settled else 'PM'}  ({e.maturity * 365:.0f}d)"
            self.series.append((label, float(e.maturity), rows))
            self.keys.append((e.expiry, e.am_settled))

    def moneyness(self, rows: np.ndarray) -> np.ndarray:
        """K/F of `rows`."""
        return self.strike[rows] / self.surface.forward[rows]

    def atm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Days to expiry, ATM market IV, ATM model IV (NaN without a model) per expiry."""
        days, market, model = [], [], []
        for _, maturity, rows in self.series:
            i = rows[np.argmin(np.abs(self.moneyness(rows) - 1.0))]
            days.append(maturity * 365.0)
            market.append(self.surface.iv_mid[i])
            model.append(self.model_iv[i] if self.model_iv is not None else np.nan)
        return np.array(days), np.array(market), np.array(model)

    def grid(self, values: np.ndarray) -> np.ndarray:
        """Mean of `values` per (expiry, moneyness bin); NaN where empty."""
        out = np.full((len(self.series), len(MONEYNESS_BINS) - 1), np.nan)
        for j, (_, _, rows) in enumerate(self.series):
            b = np.digitize(self.moneyness(rows), MONEYNESS_BINS) - 1
            ok = (b >= 0) & (b < out.shape[1]) & np.isfinite(values[rows])
            if ok.any():
                sums = np.bincount(b[ok], weights=values[rows][ok], minlength=out.shape[1])
                counts = np.bincount(b[ok], minlength=out.shape[1])
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[j] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        return out


class SurfacePanel(Panel):
    title = "Volatility surface"
    name = "surface"

    def __init__(self, bridge: Bridge, opengl_mode: str = "auto", parent: QWidget | None = None) -> None:
        super().__init__(bridge, parent)
        self._surface = None
        self.view: SurfaceView | None = None
        self.fair = None            # the engine's fair-value fit of the shown surface
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.gl_ok, why = opengl_status(opengl_mode)
        self.note = QLabel(why)
        self.note.setObjectName("note")
        self.note.setVisible(bool(why))
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)
        self.gl_view = None
        if self.gl_ok:
            self._build_3d()
        self._build_smile()
        self._build_term()
        self._build_residuals()
        self.status = QLabel("waiting for the first surface…")
        self.status.setStyleSheet(f"color: {theme.MUTED}")
        layout.addWidget(self.status)
        self._stale: set[int] = set()
        self.tabs.currentChanged.connect(self._draw_tab)
        bridge.surface.connect(self._on_surface)
        bridge.fit.connect(self._on_fit)

    # --------------------------------------------------------------------------------- building
    def _build_3d(self) -> None:
        import pyqtgraph.opengl as gl

        self.gl_view = gl_view_window()
        self.gl_view.setBackgroundColor(theme.BASE)
        # the 10 x 10 x Z_HEIGHT box centred in the view, seen from the short-dated, low-strike corner
        self.gl_view.setCameraPosition(pos=pg.Vector(5, 5, Z_HEIGHT / 2), distance=15, elevation=28, azimuth=-124)
        grid = gl.GLGridItem()
        grid.setSize(10, 10)
        grid.setSpacing(1, 1)
        grid.translate(5, 5, 0)
        self.gl_view.addItem(grid)
        self.gl_mesh = None
        self._mesh_shape = None
        self.gl_points = gl.GLScatterPlotItem(size=4, color=(1.0, 0.85, 0.3, 0.9), pxMode=True)
        self.gl_view.addItem(self.gl_points)
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        self.gl_container = QWidget.createWindowContainer(self.gl_view, page)
        self.gl_container.setMinimumSize(200, 150)
        v.addWidget(self.gl_container, 1)
        # axis captions as a label (text drawn inside the GL scene is lost in grabs and hard to read)
        self.gl_caption = QLabel("")
        self.gl_caption.setStyleSheet(f"color: {theme.MUTED}; padding: 0 4px")
        self.gl_caption.setWordWrap(True)
        v.addWidget(self.gl_caption)
        self.gl_page = page
        self.tabs.addTab(page, "3-D")

    def release_gl(self) -> None:
        """Delete the 3-D view now, while the display connection is alive (left to the main window's deletion,
        the container would free the GL window that Python also owns, and the process would crash at exit).
        The 2-D views remain."""
        if self.gl_view is None:
            return
        import shiboken6

        view, container = self.gl_view, self.gl_container
        self.gl_view = self.gl_container = self.gl_mesh = self.gl_points = None
        container.hide()
        shiboken6.delete(view)               # Python owns the window: deleting the container instead frees it twice

    def _build_smile(self) -> None:
        page = QWidget()
        v = QVBoxLayout(page)
        v.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Expiry"))
        self.expiry = QComboBox()
        self.expiry.setMinimumContentsLength(22)
        self.expiry.currentIndexChanged.connect(lambda _: self._draw_smile())
        row.addWidget(self.expiry)
        row.addStretch(1)
        self.smile_info = QLabel("")
        row.addWidget(self.smile_info)
        v.addLayout(row)
        self.smile = calm(pg.PlotWidget())
        self.smile.setLabel("bottom", "strike")
        self.smile.setLabel("left", "implied vol (%)")
        self.smile.showGrid(x=True, y=True, alpha=0.2)
        self.smile.addLegend(offset=(-10, 10))
        self.smile_bars = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), beam=0, pen=pg.mkPen("#6b7785", width=1))
        self.smile.addItem(self.smile_bars)
        self.smile_mid = self.smile.plot([], [], pen=None, symbol="o", symbolSize=4, symbolBrush=theme.WARNING,
                                         symbolPen=None, name="market mid (bars: bid/ask)")
        self.smile_model = self.smile.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), name="model")
        self.smile_fair = self.smile.plot([], [], pen=pg.mkPen(theme.POSITIVE, width=2, style=pg.QtCore.Qt.DashLine),
                                          name="fair (arbitrage-free)")
        self.smile_fwd = pg.InfiniteLine(angle=90, pen=pg.mkPen(theme.MUTED, style=pg.QtCore.Qt.DashLine))
        self.smile.addItem(self.smile_fwd)
        v.addWidget(self.smile)
        self.tabs.addTab(page, "Smile")

    def _build_term(self) -> None:
        self.term = calm(pg.PlotWidget())
        self.term.setLabel("bottom", "days to expiry")
        self.term.setLabel("left", "ATM implied vol (%)")
        self.term.showGrid(x=True, y=True, alpha=0.2)
        self.term.addLegend(offset=(-10, 10))
        self.term_market = self.term.plot([], [], pen=pg.mkPen(theme.WARNING, width=1), symbol="o", symbolSize=5,
                                          symbolBrush=theme.WARNING, symbolPen=None, name="market ATM")
        self.term_model = self.term.plot([], [], pen=pg.mkPen(theme.ACCENT, width=2), name="Heston ATM")
        self.tabs.addTab(self.term, "Term structure")

    def _build_residuals(self) -> None:
        self.resid = calm(pg.PlotWidget())
        self.resid.setLabel("bottom", "moneyness K/F")
        self.resid.setLabel("left", "expiry")
        self.resid_image = pg.ImageItem()
        self.resid.addItem(self.resid_image)
        # cheap (market below model: a buy) is green, rich (a sell) is red: the same colours as sides
        cmap = pg.ColorMap([0.0, 0.5, 1.0], [pg.mkColor(theme.POSITIVE), pg.mkColor("#20252d"),
                                             pg.mkColor(theme.NEGATIVE)])
        self.resid_image.setLookupTable(cmap.getLookupTable(nPts=256))
        self.resid_bar = pg.ColorBarItem(values=(-2, 2), colorMap=cmap, label="market − model, vol pts",
                                         interactive=False)
        self.resid_bar.setImageItem(self.resid_image, insert_in=self.resid.getPlotItem())
        self.resid_note = pg.TextItem("", color=theme.MUTED, anchor=(0.5, 0.5))
        self.resid.addItem(self.resid_note)
        self.tabs.addTab(self.resid, "Residuals")

    # ---------------------------------------------------------------------------------- events
    def _on_surface(self, surface) -> None:
        self._surface = surface
        self.mark_dirty()

    def _on_fit(self, fit) -> None:
        self.mark_dirty()           # a new fit: new model IVs to draw

    def render(self) -> None:
        if self._surface is None:
            return
        self.view = SurfaceView(self._surface, model_iv_of(self._surface, self.bridge.model_iv(self._surface)))
        self.fair = self.bridge.fair_fit(self._surface)
        snap = self._surface.snapshot
        usable = int(np.count_nonzero(self._surface.usable))
        model = "" if self.view.model_iv is not None else "  ·  model curve: no model IVs from the engine yet"
        self.status.setText(f"{snap.underlying} {snap.underlying_price:,.2f}  ·  {market_time.et(snap.timestamp)} ET  ·  "
                            f"{usable:,} usable of {len(snap):,} quotes  ·  {len(self.view.series)} expiries{model}")
        labels = [s[0] for s in self.view.series]
        current = self.expiry.currentText()
        if labels != [self.expiry.itemText(i) for i in range(self.expiry.count())]:
            self.expiry.blockSignals(True)
            self.expiry.clear()
            self.expiry.addItems(labels)
            if current in labels:
                self.expiry.setCurrentIndex(labels.index(current))
            else:   # default: the first expiry about a month out
                days = [s[1] * 365 for s in self.view.series]
                self.expiry.setCurrentIndex(int(np.argmin(np.abs(np.array(days) - 30))) if days else -1)
            self.expiry.blockSignals(False)
        # only the visible view is drawn now; the others when their tab is shown (the 3-D mesh upload and the
        # residual image are the panel's biggest costs on the loop thread)
        self._stale = set(range(self.tabs.count()))
        self._draw_tab(self.tabs.currentIndex())

    def _draw_tab(self, index: int) -> None:
        if self.view is None or index not in self._stale:
            return
        self._stale.discard(index)
        page = self.tabs.widget(index)
        if page is self.term:
            self._draw_term()
        elif page is self.resid:
            self._draw_residuals()
        elif self.gl_view is not None and page is self.gl_page:
            self._draw_3d()
        else:
            self._draw_smile()

    def _draw_smile(self) -> None:
        view = self.view
        i = self.expiry.currentIndex()
        if view is None or not (0 <= i < len(view.series)):
            return
        _, maturity, rows = view.series[i]
        s = view.surface
        k = view.strike[rows]
        mid = s.iv_mid[rows] * 100
        bid = np.where(np.isfinite(s.iv_bid[rows]), s.iv_bid[rows] * 100, mid)
        ask = np.where(np.isfinite(s.iv_ask[rows]), s.iv_ask[rows] * 100, mid)
        self.smile_bars.setData(x=k, y=mid, top=np.maximum(ask - mid, 0), bottom=np.maximum(mid - bid, 0), beam=0)
        self.smile_mid.setData(k, mid)
        if view.model_iv is not None:
            model = view.model_iv[rows] * 100
            ok = np.isfinite(model)
            self.smile_model.setData(k[ok], model[ok])
        else:
            self.smile_model.setData([], [])
        fair_note = self._draw_fair(view.keys[i], rows, k)
        follow(self.smile, k, np.concatenate([bid, ask]))
        forward = float(s.forward[rows[0]])
        self.smile_fwd.setValue(forward)
        self.smile_info.setText(f"forward {forward:,.2f}  ·  {len(rows)} OTM quotes  ·  {fair_note}")

    def _draw_fair(self, key: tuple, rows: np.ndarray, k: np.ndarray) -> str:
        """The fair-value curve of this expiry, and one line on its fit (status, quotes inside their spread, IV
        RMSE, arbitrage violations of the whole surface)."""
        fair = self.fair
        piece = next((sl for sl in fair.slices if sl.key == key), None) if fair is not None else None
        if piece is None or not piece.has_values:
            self.smile_fair.setData([], [])
            return "fair: none for this expiry" if fair is not None else "fair: not fitted yet"
        iv = fair.fair_iv[rows] * 100
        ok = np.isfinite(iv)
        self.smile_fair.setData(k[ok], iv[ok])
        if piece.status != "ok":
            return f"fair: {piece.status} ({piece.reason})"
        return (f"fair: {piece.inside_pct:.0f}% of {piece.quotes} quotes inside their spread, "
                f"RMSE {piece.rmse_iv:.2f} vol pts, {fair.arbitrage_violations} arbitrage violations")

    def _draw_term(self) -> None:
        days, market, model = self.view.atm()
        self.term_market.setData(days, market * 100)
        ok = np.isfinite(model)
        self.term_model.setData(days[ok], model[ok] * 100)
        follow(self.term, days, np.concatenate([market, model[ok]]) * 100)

    def _draw_residuals(self) -> None:
        view = self.view
        if view.model_iv is None or not view.series:
            self.resid_image.clear()
            self.resid_note.setText("residuals appear once the engine publishes model IVs")
            self.resid_note.setPos(1.0, 0.5)
            return
        self.resid_note.setText("")
        grid = view.grid((view.surface.iv_mid - view.model_iv) * 100)     # expiries x bins, vol points
        image = np.nan_to_num(grid.T, nan=0.0)                             # ImageItem: x = bins, y = expiries
        lo, hi = MONEYNESS_BINS[0], MONEYNESS_BINS[-1]
        self.resid_image.setImage(image, autoLevels=False, levels=(-2, 2))
        self.resid_image.setRect(pg.QtCore.QRectF(lo, 0, hi - lo, len(view.series)))
        self.resid.setXRange(lo, hi, padding=0.02)      # the grid only (not the hidden note at the origin)
        self.resid.setYRange(0, len(view.series), padding=0.02)
        axis = self.resid.getAxis("left")
        step = max(1, len(view.series) // 12)
        axis.setTicks([[(j + 0.5, view.series[j][0].split("(")[0].strip()) for j in range(0, len(view.series), step)]])

    def _draw_3d(self) -> None:
        import pyqtgraph.opengl as gl

        view = self.view
        if not view.series:
            return
        values = view.model_iv if view.model_iv is not None else view.surface.iv_mid
        grid = view.grid(values)
        # fill holes along each expiry so the mesh is continuous
        x = 0.5 * (MONEYNESS_BINS[1:] + MONEYNESS_BINS[:-1])
        for j in range(grid.shape[0]):
            ok = np.isfinite(grid[j])
            grid[j] = np.interp(x, x[ok], grid[j][ok]) if ok.any() else np.nanmean(grid) if np.isfinite(grid).any() else 0.2
        mats = np.array([s[1] for s in view.series])
        xs = (x - x[0]) / (x[-1] - x[0]) * 10
        ys = np.sqrt(mats / max(mats.max(), 1e-6)) * 10
        if len(np.unique(ys)) != len(ys):
            ys = np.arange(len(ys), dtype=float) * 10 / max(len(ys) - 1, 1)
        # IV scaled into the box between robust bounds, so one wild wing does not flatten the rest
        lo, hi = np.nanpercentile(grid, [1, 99]) if np.isfinite(grid).any() else (0.1, 0.3)
        hi = max(hi, lo + 0.01)

        def height(iv):
            return np.clip((np.asarray(iv) - lo) / (hi - lo), -0.05, 1.15) * Z_HEIGHT

        z = height(grid.T)                                    # shape (len(xs), len(ys))
        norm = np.clip(z / Z_HEIGHT, 0.0, 1.0).ravel()
        self.gl_caption.setText(f"across: moneyness K/F 0.8 → 1.2  ·  deep: expiry (√T) {mats[0] * 365:.0f}d → "
                                f"{mats[-1] * 365:.0f}d  ·  up: "
                                f"{'model' if view.model_iv is not None else 'market'} IV {lo:.0%} → {hi:.0%}"
                                f"  ·  dots: market mid IV")
        colours = np.asarray(pg.colormap.get("viridis").map(norm, mode="float"), dtype=np.float32).reshape(-1, 4)   # one RGBA per vertex, x-major
        if self.gl_mesh is not None and self._mesh_shape != z.shape:      # a new expiry: rebuild the mesh
            self.gl_view.removeItem(self.gl_mesh)
            self.gl_mesh = None
        if self.gl_mesh is None:
            self.gl_mesh = gl.GLSurfacePlotItem(x=xs, y=ys, z=z, colors=colours, shader=None, smooth=False,
                                                drawEdges=True, edgeColor=(0.25, 0.3, 0.35, 1))
            self.gl_view.addItem(self.gl_mesh)
            self._mesh_shape = z.shape
        else:
            self.gl_mesh.setData(x=xs, y=ys, z=z, colors=colours)
        pts = []
        for j, (_, _, rows) in enumerate(view.series):
            m = view.moneyness(rows)
            keep = (m >= x[0]) & (m <= x[-1])
            px = (m[keep] - x[0]) / (x[-1] - x[0]) * 10
            pts.append(np.column_stack([px, np.full(keep.sum(), ys[j]), height(view.surface.iv_mid[rows][keep])]))
        if pts:
            self.gl_points.setData(pos=np.vstack(pts))
