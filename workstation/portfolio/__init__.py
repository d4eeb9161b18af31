"""The book: positions from fills, marks, P&L (realised, unrealised, daily) and attribution by Greeks."""
from .attribution import Attribution, attribute
from .book import Book
from .greeks import DollarGreeks, dollar_greeks

__all__ = ["Attribution", "attribute", "Book", "DollarGreeks", "dollar_greeks"]
