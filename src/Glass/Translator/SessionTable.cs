namespace Glass.Translator;

/// <summary>
/// Every session of an engine, in no order. A session knows its own slot, so adding, removing and
/// membership cost O(1) and 8 bytes of array a session; the dictionary by id this replaces cost
/// about 50 bytes a session, and nothing looked a session up by its id.
/// </summary>
internal sealed class SessionTable
{
    private const int MinCapacity = 16;
    private Session?[] _items = new Session?[MinCapacity];

    public int Count { get; private set; }

    /// <summary>Slots the array has now.</summary>
    public int Capacity => _items.Length;

    public void Add(Session s)
    {
        if (Count == _items.Length)
            Array.Resize(ref _items, _items.Length * 2);
        s.Slot = Count;
        _items[Count++] = s;
    }

    public bool Contains(Session s) => (uint)s.Slot < (uint)Count && ReferenceEquals(_items[s.Slot], s);

    /// <summary>Removes <paramref name="s"/>; the last session takes its slot.</summary>
    public bool Remove(Session s)
    {
        if (!Contains(s))
            return false;
        var last = _items[--Count]!;
        _items[s.Slot] = last;
        last.Slot = s.Slot;
        _items[Count] = null;
        s.Slot = -1;
        // A burst that ended gives its memory back (hysteresis: shrink at a quarter, to half).
        if (Count < _items.Length / 4 && _items.Length > MinCapacity)
            Array.Resize(ref _items, Math.Max(MinCapacity, _items.Length / 2));
        return true;
    }

    /// <summary>
    /// From the last session to the first, so the session at hand may be removed meanwhile (the one
    /// that takes its slot was seen already); no other may be added or removed.
    /// </summary>
    public Enumerator GetEnumerator() => new(this);

    public struct Enumerator(SessionTable table)
    {
        private int _index = table.Count;

        public readonly Session Current => table._items[_index]!;

        public bool MoveNext()
        {
            _index = Math.Min(_index - 1, table.Count - 1);
            return _index >= 0;
        }
    }
}
