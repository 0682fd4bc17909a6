"""How the timeline draws its rows: hour lanes, moments, search hits."""

from __future__ import annotations

import logging
from typing import TypeVar

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import (
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from app.memory.base import Moment
from app.ui.timeline_model import (
    CLIP_COLOR,
    COMPACT_ROW_PX,
    COMPACT_THUMB,
    GAP_COLOR,
    HIT_THUMB,
    LARGE_ROW_PX,
    LARGE_THUMB,
    SPEECH_COLOR,
    DayModel,
    HitModel,
    _duration,
    _hms,
    _Lane,
    _short_date,
    _span,
    describe,
    summary_line,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Index = QModelIndex | QPersistentModelIndex
_ROOT = QModelIndex()
def _secondary(palette: QPalette, selected: bool) -> QColor:
    if selected:
        return palette.color(QPalette.ColorRole.HighlightedText)
    color = palette.color(QPalette.ColorRole.Text)
    color.setAlphaF(0.6)
    return color


def _fit(size: QSize, box: QRect) -> QRect:
    scaled = size.scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
    return QRect(box.x() + (box.width() - scaled.width()) // 2,
                 box.y() + (box.height() - scaled.height()) // 2, scaled.width(), scaled.height())


def _paint_note(painter: QPainter, box: QRect, color: QColor) -> None:
    """A page with lines: a summary (drawn, like the bubble)."""
    h = min(box.height(), 30)
    w = round(h * 0.8)
    page = QRectF(box.center().x() - w / 2, box.center().y() - h / 2, w, h)
    fill = QColor(color)
    fill.setAlphaF(0.12)
    painter.setPen(QPen(color, 1.2))
    painter.setBrush(fill)
    painter.drawRoundedRect(page, 2, 2)
    for i in range(1, 4):
        y = page.top() + page.height() * i / 4.5 + 2
        painter.drawLine(QPointF(page.left() + w * 0.2, y), QPointF(page.right() - w * 0.2, y))


def _paint_bubble(painter: QPainter, box: QRect, color: QColor) -> None:
    """A speech bubble (drawn, so it does not depend on an emoji font)."""
    w = min(box.width(), round(box.height() * 1.25))
    h = round(w * 0.62)
    body = QRectF(box.center().x() - w / 2, box.center().y() - h / 2 - 2, w, h)
    path = QPainterPath()
    path.addRoundedRect(body, h * 0.3, h * 0.3)
    tail = QPainterPath()
    tail.moveTo(body.left() + w * 0.25, body.bottom() - 1)
    tail.lineTo(body.left() + w * 0.18, body.bottom() + h * 0.32)
    tail.lineTo(body.left() + w * 0.45, body.bottom() - 1)
    tail.closeSubpath()
    path = path.united(tail)
    fill = QColor(color)
    fill.setAlphaF(0.18)
    painter.setPen(QPen(color, 1.2))
    painter.setBrush(fill)
    painter.drawPath(path)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(color)
    r = max(1.5, h * 0.08)
    for dx in (-w * 0.2, 0.0, w * 0.2):
        painter.drawEllipse(QPointF(body.center().x() + dx, body.center().y()), r, r)


class LaneDelegate(QStyledItemDelegate):
    """Paints hour rows (time, counts, a strip of minute ticks) and moment rows (time,
    thumbnail or speech bubble, text). Rows are all one height (`large` picks which)."""

    def __init__(self, model: DayModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.large = False

    @property
    def thumb_box(self) -> QSize:
        return LARGE_THUMB if self.large else COMPACT_THUMB

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(320, LARGE_ROW_PX if self.large else COMPACT_ROW_PX)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        widget = opt.widget
        style = widget.style() if widget is not None else None
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        lane = self.model.lane(index)
        if lane is not None and not selected:
            band = QColor(opt.palette.color(QPalette.ColorRole.AlternateBase))
            painter.fillRect(opt.rect, band)
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        if lane is not None:
            self._paint_hour(painter, opt, lane, selected)
        else:
            moment = self.model.moment(index)
            if moment is not None:
                self._paint_moment(painter, opt, index, moment, selected)
        painter.restore()

    def _paint_hour(self, painter: QPainter, opt: QStyleOptionViewItem, lane: _Lane,
                    selected: bool) -> None:
        full: QRect = opt.rect.adjusted(4, 0, -10, 0)
        palette: QPalette = opt.palette
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected
                                   else QPalette.ColorRole.Text)
        about = summary_line(lane.summary)
        # With a summary: the hour and its counts on the first line, the summary below.
        rect = QRect(full.left(), full.top() + 2, full.width(), min(full.height() // 2, 24) - 2) \
            if about else full
        bold = QFont(opt.font)
        bold.setBold(True)
        bold.setPointSizeF(bold.pointSizeF() * 1.1)
        painter.setFont(bold)
        painter.setPen(text_color)
        label = f"{lane.hour:02d}:00"
        fm = painter.fontMetrics()
        painter.drawText(rect, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
        x = rect.left() + fm.horizontalAdvance("00:00") + 14
        text_left = x

        painter.setFont(opt.font)
        fm = painter.fontMetrics()
        strip_w = max(120, min(360, full.width() // 2))
        strip = QRect(full.right() - strip_w, rect.center().y() - 7, strip_w, 14)
        if about:  # below the strip, the row's whole width
            self._paint_summary(painter, opt, about, QRect(
                text_left, rect.bottom() + 1, full.right() - text_left,
                full.bottom() - rect.bottom() - 3), selected)
        counts = [(f"{len(lane.moments)} moments", None),
                  (f"{lane.n_clips} seen", CLIP_COLOR), (f"{lane.n_utterances} heard", SPEECH_COLOR)]
        if lane.gaps:
            counts.append((f"camera off {_duration(lane.gap_s)}", GAP_COLOR))
        for i, (text, dot) in enumerate(counts):
            if i:
                text = "·  " + text if dot is None else text
            if dot is not None:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(dot)
                painter.drawEllipse(QPoint(x + 4, rect.center().y() + 1), 4, 4)
                x += 12
            painter.setPen(_secondary(palette, selected))
            width = fm.horizontalAdvance(text)
            if x + width > strip.left() - 12:
                break
            painter.drawText(QRect(x, rect.top(), width + 2, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter, text)
            x += width + 14

        track = QColor(palette.color(QPalette.ColorRole.Text))
        track.setAlphaF(0.08)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(track)
        painter.drawRoundedRect(strip, 3, 3)
        guide = QColor(palette.color(QPalette.ColorRole.Text))
        guide.setAlphaF(0.2)
        painter.setPen(QPen(guide, 1))
        for quarter in (1, 2, 3):
            gx = strip.left() + strip.width() * quarter // 4
            painter.drawLine(gx, strip.top() + 3, gx, strip.bottom() - 3)
        # Episodes: tinted bands under the ticks, alternating tints so neighbours stay apart.
        for i, (a, b) in enumerate(lane.bands):
            tint = QColor(palette.color(QPalette.ColorRole.Highlight))
            tint.setAlphaF(0.22 if i % 2 == 0 else 0.38)
            x0 = strip.left() + round(a * strip.width())
            x1 = strip.left() + max(round(b * strip.width()), round(a * strip.width()) + 3)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(tint)
            painter.drawRoundedRect(QRect(x0, strip.top() + 1, x1 - x0, strip.height() - 2), 2, 2)
        # Gaps in what was seen: hatched, at least 3 px wide so a few seconds still show.
        for a, b in lane.gaps:
            x0 = strip.left() + round(a * strip.width())
            x1 = max(strip.left() + round(b * strip.width()), x0 + 3)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QBrush(GAP_COLOR, Qt.BrushStyle.BDiagPattern))
            painter.drawRect(QRect(x0, strip.top(), x1 - x0, strip.height()))
            painter.setBrush(GAP_COLOR)
            painter.drawRect(QRect(x0, strip.bottom() - 2, x1 - x0, 3))
        for clip_pass in (True, False):  # speech on top: it is sparser
            painter.setPen(QPen(CLIP_COLOR if clip_pass else SPEECH_COLOR, 2))
            for frac, is_clip in lane.ticks:
                if is_clip == clip_pass:
                    tx = strip.left() + 1 + round(frac * (strip.width() - 2))
                    painter.drawLine(tx, strip.top() + 2, tx, strip.bottom() - 2)

    @staticmethod
    def _paint_summary(painter: QPainter, opt: QStyleOptionViewItem, text: str, box: QRect,
                       selected: bool) -> None:
        """The hour's summary: as many whole lines as fit, the last one elided."""
        if box.width() < 40 or box.height() <= 0:
            return
        italic = QFont(opt.font)
        italic.setItalic(True)
        painter.setFont(italic)
        fm = painter.fontMetrics()
        lines = max(1, box.height() // fm.lineSpacing())
        painter.setPen(_secondary(opt.palette, selected))
        if lines == 1:
            painter.drawText(box, Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(text, Qt.TextElideMode.ElideRight, box.width()))
        else:
            box = QRect(box.left(), box.top(), box.width(), lines * fm.lineSpacing())
            elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, box.width() * lines)
            painter.drawText(box, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignTop, elided)
        painter.setFont(opt.font)

    def _paint_moment(self, painter: QPainter, opt: QStyleOptionViewItem, index: Index,
                      m: Moment, selected: bool) -> None:
        rect: QRect = opt.rect.adjusted(6, 2, -10, -2)
        palette: QPalette = opt.palette
        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected
                                   else QPalette.ColorRole.Text)
        painter.setFont(opt.font)
        fm = painter.fontMetrics()
        # Compact rows lead with the start time; large rows say the whole span beside the image.
        time_w = 0 if self.large else fm.horizontalAdvance("00:00:00") + 12
        time_rect = QRect(rect.left(), rect.top(), time_w, rect.height())
        if not self.large:
            painter.setPen(_secondary(palette, selected))
            painter.drawText(time_rect, Qt.AlignmentFlag.AlignVCenter, _hms(m.t0_s))

        box_size = self.thumb_box
        box = QRect(time_rect.right() + 1, rect.top() + (rect.height() - box_size.height()) // 2,
                    box_size.width(), box_size.height())
        if m.kind == "clip":
            pixmap = self.model.thumbnail(index)
            if pixmap is not None and not pixmap.isNull():
                target = _fit(pixmap.deviceIndependentSize().toSize(), box)
                painter.drawPixmap(target, pixmap)
            else:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128, 50))
                painter.drawRoundedRect(box, 3, 3)
        else:
            side = 56 if self.large else 26
            _paint_bubble(painter, QRect(box.center().x() - side // 2 - side // 4,
                                         box.center().y() - side // 2, side + side // 2, side),
                          SPEECH_COLOR)

        text_left = box.right() + 12
        duration = _duration(m.t1_s - m.t0_s)
        dur_w = fm.horizontalAdvance(duration) + 4
        painter.setPen(text_color if m.text else _secondary(palette, selected))
        if self.large:
            head = QRect(text_left, rect.top() + 4, rect.right() - text_left, fm.height())
            painter.setPen(_secondary(palette, selected))
            painter.drawText(head, Qt.AlignmentFlag.AlignLeft,
                             f"{_span(m)} · {duration} · {'seen' if m.kind == 'clip' else 'heard'}")
            body = QRect(text_left, head.bottom() + 6, rect.right() - text_left,
                         rect.bottom() - head.bottom() - 8)
            painter.setPen(text_color if m.text else _secondary(palette, selected))
            lines = max(1, body.height() // fm.lineSpacing())
            text = describe(m)
            elided = fm.elidedText(text, Qt.TextElideMode.ElideRight, body.width() * lines)
            painter.drawText(body, Qt.TextFlag.TextWordWrap | Qt.AlignmentFlag.AlignTop, elided)
        else:
            text_rect = QRect(text_left, rect.top(), rect.right() - text_left - dur_w - 8,
                              rect.height())
            text = fm.elidedText(describe(m).replace("\n", " "), Qt.TextElideMode.ElideRight,
                                 text_rect.width())
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter, text)
            painter.setPen(_secondary(palette, selected))
            painter.drawText(QRect(rect.right() - dur_w, rect.top(), dur_w, rect.height()),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, duration)


class HitDelegate(QStyledItemDelegate):
    """A search hit: its picture (or a speech bubble), when, and what."""

    def __init__(self, model: HitModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(240, HIT_THUMB.height() + 10)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        opt = QStyleOptionViewItem(option)
        widget = opt.widget
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if widget is not None:
            widget.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt,
                                         painter, widget)
        c = self.model.citation(index)
        if c is not None:
            m = c.moment
            selected = bool(opt.state & QStyle.StateFlag.State_Selected)
            rect = opt.rect.adjusted(5, 5, -6, -5)
            box = QRect(rect.left(), rect.top(), HIT_THUMB.width(), HIT_THUMB.height())
            pixmap = self.model.thumbnail(index)
            if pixmap is not None and not pixmap.isNull():
                painter.drawPixmap(_fit(pixmap.deviceIndependentSize().toSize(), box), pixmap)
            elif m.kind == "clip":
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(QColor(128, 128, 128, 50))
                painter.drawRoundedRect(box, 3, 3)
            elif m.kind == "summary":
                _paint_note(painter, box, _secondary(opt.palette, False))
            else:
                _paint_bubble(painter, QRect(box.center().x() - 20, box.center().y() - 13, 40, 26),
                              SPEECH_COLOR)
            palette = opt.palette
            fm = opt.fontMetrics
            left = box.right() + 10
            width = rect.right() - left
            line = fm.height()
            top = rect.top() + (rect.height() - 2 * line - 2) // 2
            painter.setFont(opt.font)
            painter.setPen(_secondary(palette, selected))
            kind = {"clip": "seen", "summary": "summary"}.get(m.kind, "heard")
            painter.drawText(QRect(left, top, width, line), Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(f"{_short_date(m.t0_s)} · {_hms(m.t0_s)} · {kind}",
                                           Qt.TextElideMode.ElideRight, width))
            painter.setPen(palette.color(QPalette.ColorRole.HighlightedText if selected
                                         else QPalette.ColorRole.Text))
            painter.drawText(QRect(left, top + line + 2, width, line), Qt.AlignmentFlag.AlignLeft,
                             fm.elidedText(describe(m).replace("\n", " "),
                                           Qt.TextElideMode.ElideRight, width))
        painter.restore()


# --- the moment view -------------------------------------------------------------------------


